//! 409 Conflict on update, retried. A convergence Heat rarely answers 409 on its own (only
//! while it releases a stack lock right after `*_COMPLETE`), so a small fault proxy in front of
//! the real Heat of `30-heat.sh` answers the first N `PUT`s with Heat's own 409 body and
//! forwards everything else unchanged.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::*;
use esi_core::exec::stack::StackOperation;
use esi_core::heat::{Heat, HeatError};
use esi_heat::{HeatConfig, OpenStackHeat};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CONFLICT: &str = r#"{"code": 409, "title": "Conflict", "explanation": "There was a conflict when trying to complete your request.", "error": {"type": "ActionInProgress", "traceback": null, "message": "Stack is already in UPDATE state."}}"#;

async fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let method = head.split(' ').next().unwrap_or_default().to_string();
    // one request per connection: tell Heat to close when done
    let head = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\nConnection: close\r\n\r\n";
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&buf[head_end..]);
    Some((method, raw))
}

/// Starts the proxy to `upstream` (`host:port`); returns its port.
async fn proxy(upstream: String, puts_to_refuse: Arc<AtomicU32>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (upstream, refuse) = (upstream.clone(), puts_to_refuse.clone());
            tokio::spawn(async move {
                let Some((method, raw)) = read_request(&mut client).await else {
                    return;
                };
                let refused = method == "PUT"
                    && refuse
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                if refused {
                    let resp = format!(
                        "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{CONFLICT}",
                        CONFLICT.len()
                    );
                    let _ = client.write_all(resp.as_bytes()).await;
                } else if let Ok(mut heat) = TcpStream::connect(&upstream).await {
                    let _ = heat.write_all(&raw).await;
                    let mut resp = Vec::new();
                    let _ = heat.read_to_end(&mut resp).await;
                    let _ = client.write_all(&resp).await;
                }
                let _ = client.shutdown().await;
            });
        }
    });
    port
}

async fn proxied(refuse: Arc<AtomicU32>) -> HeatConfig {
    let mut cfg = noauth();
    let url = cfg.heat_url.clone().unwrap();
    let rest = url.strip_prefix("http://").expect("http HEAT_URL");
    let (hostport, path) = rest.split_once('/').unwrap();
    let port = proxy(hostport.to_string(), refuse).await;
    cfg.heat_url = Some(format!("http://127.0.0.1:{port}/{path}"));
    cfg
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn a_409_on_update_is_retried_and_the_update_succeeds() {
    let refuse = Arc::new(AtomicU32::new(0));
    let heat = OpenStackHeat::new(proxied(refuse.clone()).await).unwrap();
    let name = unique("conflict");
    let out = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": 1}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
    refuse.store(3, Ordering::SeqCst);
    let out = heat
        .update(&request(
            &name,
            StackOperation::Update,
            VALUES,
            json!({"vlan": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
    assert_eq!(output(&out.outputs, "vlan"), json!(2));
    assert_eq!(heat.conflicts(), 3);
    assert_eq!(refuse.load(Ordering::SeqCst), 0);
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn a_409_that_does_not_clear_is_unavailable_and_changes_nothing() {
    let refuse = Arc::new(AtomicU32::new(0));
    let mut cfg = proxied(refuse.clone()).await;
    cfg.retry.conflict_attempts = 4;
    let heat = OpenStackHeat::new(cfg).unwrap();
    let name = unique("conflict_stuck");
    heat.create(&request(
        &name,
        StackOperation::Create,
        VALUES,
        json!({"vlan": 1}),
    ))
    .await
    .unwrap();
    refuse.store(1000, Ordering::SeqCst);
    let err = heat
        .update(&request(
            &name,
            StackOperation::Update,
            VALUES,
            json!({"vlan": 2}),
        ))
        .await
        .unwrap_err();
    match &err {
        HeatError::Unavailable(m) => {
            assert!(m.contains("409") && m.contains("ActionInProgress"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(heat.conflicts(), 4);
    refuse.store(0, Ordering::SeqCst);
    let got = heat.get(&name).await.unwrap().unwrap();
    assert_eq!(
        output(&got.outputs, "vlan"),
        json!(1),
        "the stack was not updated"
    );
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
}
