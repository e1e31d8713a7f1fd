//! Raw etcd puts against `Store::put` through the adapter, on the same server in the same run.
//! By hand, not in CI: `ETCD_ENDPOINTS=http://127.0.0.1:23790 cargo bench -p esi-etcd`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use esi_core::store::{PutMode, Store};
use esi_etcd::{EtcdConfig, EtcdStore};
use std::sync::Arc;

const N: usize = 500;

fn bench(c: &mut Criterion) {
    let Ok(endpoints) = std::env::var("ETCD_ENDPOINTS") else {
        eprintln!("skipped: set ETCD_ENDPOINTS (bash .ci/services/10-etcd.sh start)");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = Arc::new(
        rt.block_on(EtcdStore::connect(
            EtcdConfig::from_list(&endpoints).with_namespace("/bench-esi-etcd"),
        ))
        .expect("connect"),
    );
    let value = "x".repeat(1024);
    let mut g = c.benchmark_group("etcd");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for conc in [1usize, 16, 64] {
        g.bench_function(format!("raw put, concurrency {conc}"), |b| {
            b.to_async(&rt).iter(|| {
                let client = store.client();
                let value = value.clone();
                async move {
                    let mut tasks = Vec::new();
                    for w in 0..conc {
                        let mut c = client.clone();
                        let v = value.clone();
                        tasks.push(tokio::spawn(async move {
                            for i in (w..N).step_by(conc) {
                                c.put(format!("/bench-raw/{i}"), v.as_str(), None)
                                    .await
                                    .expect("put");
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.expect("task");
                    }
                }
            })
        });
        g.bench_function(format!("Store::put, concurrency {conc}"), |b| {
            b.to_async(&rt).iter(|| {
                let store = store.clone();
                let value = value.clone();
                async move {
                    let mut tasks = Vec::new();
                    for w in 0..conc {
                        let s = store.clone();
                        let v = value.clone();
                        tasks.push(tokio::spawn(async move {
                            for i in (w..N).step_by(conc) {
                                s.put(&format!("/k/{i}"), &v, PutMode::Overwrite, None)
                                    .await
                                    .expect("put");
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.expect("task");
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
