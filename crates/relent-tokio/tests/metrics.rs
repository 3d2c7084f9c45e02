//! Metrics through the `metrics` facade.
//!
//! The world: a stub provider whose first key is dead; one call rotates to the second key.
//! A Prometheus recorder (metrics-exporter-prometheus) is installed for the call. What must
//! happen: the rendered text counts 2 sends, 1 rotation with reason `auth_invalid` or the
//! like, 1 successful call, the revoked key's state change, labelled with key labels, and
//! no secret anywhere. Why: operators need per-target, per-key and per-reason counts from
//! whatever exporter they use.

use relent::{KeyId, Policy};
use relent_sim::stub::Stub;
use relent_sim::Schedule;
use relent_tokio::{Client, Endpoint, KeyStore, ReqwestTransport, Secret};

#[test]
fn a_rotation_shows_up_in_prometheus_text() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let schedule: Schedule = serde_json::from_str(
                r#"{"targets":[{"provider":"openai","model":"gpt-4o","keys":[{"id":1,"label":"old"},{"id":2,"label":"new"}]}],
                    "faults":[{"scope":{"key":1},"kind":{"type":"key_rejected"}}],"latency_ms":1}"#,
            )
            .unwrap();
            let stub = Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let mut keys = KeyStore::new();
            keys.insert(KeyId(1), Secret::new("stub-1"));
            keys.insert(KeyId(2), Secret::new("stub-2"));
            let client = Client::new(
                ReqwestTransport::new(),
                schedule.targets,
                vec![Endpoint::openai(format!("{}/v1/chat/completions", stub.base_url()))],
                keys,
                Policy::default(),
            )
            .unwrap();
            client.call(br#"{"model":"gpt-4o"}"#).await.unwrap();
        })
    });
    let text = handle.render();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
            .to_string()
    };
    assert!(
        line("relent_sends_total{provider=\"openai\",model=\"gpt-4o\",key=\"old\"}")
            .ends_with(" 1")
    );
    assert!(
        line("relent_sends_total{provider=\"openai\",model=\"gpt-4o\",key=\"new\"}")
            .ends_with(" 1")
    );
    assert!(
        line("relent_rotations_total{provider=\"openai\",model=\"gpt-4o\",key=\"new\"")
            .ends_with(" 1")
    );
    assert!(line("relent_calls_total{outcome=\"success\"}").ends_with(" 1"));
    assert!(line("relent_key_state_changes_total{provider=\"openai\",model=\"gpt-4o\",key=\"old\",state=\"revoked\"}").ends_with(" 1"));
    assert!(text.contains("relent_call_duration_seconds"));
    assert!(
        !text.contains("stub-1") && !text.contains("stub-2"),
        "{text}"
    );
}
