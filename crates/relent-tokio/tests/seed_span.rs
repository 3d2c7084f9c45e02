//! Each call's seed is in its `relent.call` tracing span, so a call seen in a log can be
//! replayed in the simulator.
//!
//! This test has a binary of its own and installs its subscriber as the global default:
//! with a thread-scoped subscriber (`with_default`), another test registering the same
//! callsite at the same moment on another thread could cache it as disabled, and the span
//! would silently go missing (seen once on CI).

mod seeded;

use seeded::{client, stub, BODY};

/// A writer into a shared buffer, for the log of one test.
#[derive(Clone, Default)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_calls_seed_is_in_its_tracing_span() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    rt.block_on(async {
        let stub = stub().await;
        client(&stub, Some(4242)).call(BODY).await.unwrap();
    });
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("relent.call{seed=4242"), "{log}");
}
