//! The machine's cost per decision, without the classifier's body parsing: a retry cycle of
//! transport failure → sleep → timer → send (three decisions), and a start-to-success call.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use relent::{
    Action, HttpResponse, KeySpec, Observation, Policy, Provider, RetryMachine, Target, Time,
    TransportError,
};
use std::hint::black_box;

fn machine() -> RetryMachine {
    let target = Target::new(
        Provider::Openai,
        "gpt-4o",
        vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")],
    );
    let policy = Policy {
        transient_retries_per_target: u32::MAX,
        max_attempts: u32::MAX,
        max_attempts_per_target: u32::MAX,
        deadline_ms: u64::MAX / 4,
        // The budget and the breaker act on every decision, but never stop the endless
        // retry cycle below: retries cost nothing, and the breaker never opens.
        overload: relent::OverloadPolicy {
            budget: relent::BudgetPolicy {
                retry_cost: 1,
                timeout_retry_cost: 1,
                success_reward: 1,
                capacity: u32::MAX,
            },
            breaker: relent::BreakerPolicy {
                enabled: true,
                consecutive_failures: 0,
                failure_rate_percent: 0,
                ..relent::BreakerPolicy::default()
            },
        },
        ..Policy::default()
    };
    // Limits above `policy::MAX_LIMIT` fail `Policy::validate`; `with_pool` takes the
    // policy as it is, so the retry cycle below can run for ever.
    RetryMachine::with_pool(policy, relent::Pool::new(vec![target]).unwrap(), 1)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("machine");
    group.throughput(Throughput::Elements(3));
    group.bench_function("retry_cycle_3_decisions", |b| {
        let mut m = machine();
        m.start(Time(0)).unwrap();
        let _ = m.poll_action();
        let mut now = Time(10);
        b.iter(|| {
            m.handle_response(now, Observation::Transport(TransportError::Reset))
                .unwrap();
            let Some(Action::Sleep { until, .. }) = m.poll_action() else {
                unreachable!()
            };
            // Keep the backoff exponent small so the bench measures decisions, not the cap.
            now = until;
            m.handle_timeout(now).unwrap();
            black_box(m.poll_action());
            now = Time(now.0 + 10);
        })
    });
    group.throughput(Throughput::Elements(2));
    let body: &[u8] = br#"{"id":"chatcmpl-1","choices":[{"message":{"content":"hi"}}]}"#;
    group.bench_function("call_start_to_success", |b| {
        b.iter_batched(
            machine,
            |mut m| {
                m.start(Time(0)).unwrap();
                black_box(m.poll_action());
                m.handle_response(
                    Time(5),
                    Observation::Http(HttpResponse {
                        status: 200,
                        headers: &[],
                        body,
                    }),
                )
                .unwrap();
                black_box(m.poll_action());
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
