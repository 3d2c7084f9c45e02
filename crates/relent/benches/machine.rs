//! The machine's cost per decision, without the classifier's body parsing: a retry cycle of
//! transport failure → sleep → timer → send (three decisions), and a start-to-success call.
//! The retry cycle runs twice: with the retry budget and a breaker acting on every decision
//! (`retry_cycle_3_decisions`), and with both off (`…_overload_off`), so one run gives the
//! cost of overload control (issue #14).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use relent::{
    Action, HttpResponse, KeySpec, Observation, Policy, Provider, RetryMachine, Target, Time,
    TransportError,
};
use std::hint::black_box;

fn machine() -> RetryMachine {
    machine_with(true)
}

fn machine_with(overload_on: bool) -> RetryMachine {
    let target = Target::new(
        Provider::Openai,
        "gpt-4o",
        vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")],
    );
    let policy = Policy {
        transient_retries_per_target: 1_000,
        max_attempts: 1_000,
        max_attempts_per_target: 1_000,
        deadline_ms: u64::MAX / 4,
        // The budget and the breaker act on every decision, but never stop the endless
        // retry cycle below: retries cost nothing, and the breaker never opens.
        overload: relent::OverloadPolicy {
            budget: relent::BudgetPolicy {
                retry_cost: 1,
                timeout_retry_cost: 1,
                success_reward: 1,
                capacity: u32::MAX,
                // The refill is counted on every paid retry, though the bucket stays full.
                retry_refund_percent: 100,
                refill_per_sec: 2,
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
    let policy = if overload_on {
        policy
    } else {
        Policy {
            overload: relent::OverloadPolicy {
                budget: relent::BudgetPolicy::unlimited(),
                breaker: relent::BreakerPolicy::off(),
            },
            ..policy
        }
    };
    RetryMachine::new(policy, vec![target], 1).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("machine");
    group.throughput(Throughput::Elements(3));
    for (name, on) in [
        ("retry_cycle_3_decisions", true),
        ("retry_cycle_3_decisions_overload_off", false),
    ] {
        group.bench_function(name, |b| retry_cycle(b, on));
    }
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

fn retry_cycle(b: &mut criterion::Bencher<'_>, overload_on: bool) {
    let mut m = machine_with(overload_on);
    m.start(Time(0)).unwrap();
    let _ = m.poll_action();
    let mut now = Time(10);
    b.iter(|| {
        // The limits stop at `policy::MAX_LIMIT` (1 000 sends): start a new call well
        // before (one machine built per 900 cycles, 2 700 decisions).
        if m.attempts() >= 900 {
            m = machine_with(overload_on);
            m.start(now).unwrap();
            let _ = m.poll_action();
        }
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
