//! The CollectorAgent REST API through a real HTTP client (reqwest) on a real socket.

use std::sync::Arc;

use esi_core::collector::{Clock, Collector, CollectorConfig, ManualClock};
use esi_core::device::SimFabric;
use esi_core::exec::conformance::json_difference;
use esi_core::exec::monitor::Timestamp;
use esi_http::collector::collector_router;
use serde_json::{json, Value};

async fn serve(monitorer: &str) -> (String, Arc<Collector>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse("2018-04-16T00:12:47Z").unwrap(),
    ));
    let collector = Arc::new(Collector::new(
        Arc::new(SimFabric::new()),
        clock.clone(),
        CollectorConfig {
            monitorer: monitorer.into(),
            ..CollectorConfig::default()
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = collector_router(collector.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, collector, clock)
}

fn body() -> Value {
    json!({"type": "snmp_device", "resource_type": "ese_devices", "resource_id": "r-1",
           "tenant_id": "t", "version": 1, "field_name": "switch",
           "properties": {"community_name": "s3cr3t-comm", "device_ip": "10.1.1.1"},
           "syncer_properties": {"etcd": {"status": {"key": "switch"}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_and_error_code() {
    let (base, collector, clock) = serve("http://agent:7070").await;
    let http = reqwest::Client::new();

    // POST → 201 with id, created_at, monitorer, link; the community never comes back
    let r = http
        .post(format!("{base}/targets"))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/json");
    let text = r.text().await.unwrap();
    assert!(!text.contains("s3cr3t-comm"), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let id = doc["id"].as_str().unwrap().to_string();
    assert_eq!(doc["created_at"], json!("2018-04-16T00:12:47Z"));
    assert_eq!(doc["monitorer"], json!("http://agent:7070"));
    assert_eq!(
        doc["link"],
        json!(format!("http://agent:7070/targets/{id}"))
    );
    assert_eq!(doc["properties"]["community_name"], json!("***"));
    assert_eq!(doc["properties"]["device_ip"], json!("10.1.1.1"));

    // GET → 200 without values, then with values once polled
    let r = http
        .get(format!("{base}/targets/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got, doc);
    // 10.1.1.1 is no simulated device: FAIL after the second failed poll (O7)
    for _ in 0..2 {
        clock.advance(60.0);
        collector.poll_all(clock.now()).await;
    }
    let got: Value = http
        .get(format!("{base}/targets/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let values = got["values"].as_array().expect("values after a poll");
    assert_eq!(values[0]["key"], json!("status"));
    assert_eq!(values[0]["value"], json!("FAIL"));
    assert_eq!(values[0]["fail_counter"], json!(2));

    // bad bodies → 400 with a message naming the problem
    let r = http
        .post(format!("{base}/targets"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("invalid JSON"), "{e}");
    let r = http
        .post(format!("{base}/targets"))
        .json(&json!([1, 2]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("{base}/targets"))
        .json(&json!({"type": "snmp_device"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("resource_type"),
        "{e}"
    );

    // unknown id → 404; DELETE → 204 then 404
    assert_eq!(
        http.get(format!("{base}/targets/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http.delete(format!("{base}/targets/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        http.delete(format!("{base}/targets/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http.get(format!("{base}/targets/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // a wrong method is refused, the service keeps answering
    assert_eq!(
        http.put(format!("{base}/targets/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    let r = http
        .post(format!("{base}/targets"))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// The recorded `monitor` response cases: POST the recorded request, compare the answer with
/// the recorded response by the corpus rules (the recorded id and time replaced by ours).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_monitor_response_shapes() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/cases");
    let root = std::env::var("ESI_CONFORMANCE_CASES")
        .map(Into::into)
        .unwrap_or(root);
    assert!(
        root.is_dir(),
        "conformance cases not found at {}",
        root.display()
    );
    let mut cases = Vec::new();
    for scenario in std::fs::read_dir(&root).unwrap().flatten() {
        let dir = scenario.path().join("exec/monitor");
        for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = f.path();
            let case: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            if case["subkind"] == json!("response") {
                cases.push((p, case));
            }
        }
    }
    assert!(cases.len() >= 10, "only {} response cases", cases.len());
    let http = reqwest::Client::new();
    let mut failures = Vec::new();
    for (path, case) in &cases {
        let monitorer = case["input"]["monitorer"].as_str().unwrap();
        let (base, _c, _clock) = serve(monitorer).await;
        let r = http
            .post(format!("{base}/targets"))
            .json(&case["input"]["request_body"])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", path.display());
        let got: Value = r.json().await.unwrap();
        let mut expected = case["expected"]["response"].clone();
        let id = got["id"].as_str().unwrap();
        assert_eq!(id.len(), 36, "id is a UUID");
        expected["id"] = json!(id);
        expected["link"] = json!(format!("{}/targets/{id}", monitorer.trim_end_matches('/')));
        expected["created_at"] = got["created_at"].clone();
        if let Some(d) = json_difference("response", &expected, &got) {
            failures.push(format!("{}: {d}", path.display()));
        }
        let shown: Value = http
            .get(format!("{base}/targets/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(d) = json_difference("GET", &expected, &shown) {
            failures.push(format!("{} GET: {d}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("{} recorded response cases match", cases.len());
}
