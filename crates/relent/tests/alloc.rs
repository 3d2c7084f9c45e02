//! Steady-state stepping allocates nothing: once a machine is built (trace off), a retry
//! cycle of transport failure → sleep → timer → send, and the final success, run without a
//! single heap allocation. A counting global allocator in this test binary proves it.
//!
//! What does allocate, by design: building the machine, an error body that must be parsed
//! (the classifier keeps the provider's message and code), an abort (its message), and the
//! trace when recording is on.

use relent::{
    Action, HttpResponse, KeySpec, Observation, Policy, Provider, RetryMachine, Target, Time,
    TransportError,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls. (Test-only code; the core
// crate itself forbids unsafe.)
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn retry_cycles_and_success_do_not_allocate() {
    let target = Target::new(
        Provider::Openai,
        "gpt-4o",
        vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")],
    );
    let mut m = RetryMachine::new(Policy::default(), vec![target], 11).unwrap();
    m.start(Time(0)).unwrap();
    let first = m.poll_action();
    assert!(matches!(first, Some(Action::Send(_))));
    let success_body: &[u8] = br#"{"id":"chatcmpl-1","choices":[{"message":{"content":"hi"}}]}"#;

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut now = Time(100);
    let mut sends = 1;
    for _ in 0..3 {
        m.handle_response(now, Observation::Transport(TransportError::Reset))
            .unwrap();
        let Some(Action::Sleep { until, .. }) = m.poll_action() else {
            panic!("expected a sleep")
        };
        now = until;
        m.handle_timeout(now).unwrap();
        let Some(Action::Send(_)) = m.poll_action() else {
            panic!("expected a send")
        };
        sends += 1;
        assert!(m.poll_action().is_none());
        now = Time(now.0 + 100);
    }
    m.handle_response(
        now,
        Observation::Http(HttpResponse {
            status: 200,
            headers: &[],
            body: success_body,
        }),
    )
    .unwrap();
    let done = m.poll_action();
    let after = ALLOCATIONS.load(Ordering::Relaxed);

    assert!(
        matches!(done, Some(Action::Succeeded { attempts: 4, .. })),
        "{done:?}"
    );
    assert_eq!(sends, 4);
    assert_eq!(
        after - before,
        0,
        "steady-state stepping allocated {} times",
        after - before
    );
}
