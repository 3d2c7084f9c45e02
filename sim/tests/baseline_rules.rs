//! One test per baseline rule: a small hand-built exchange where that rule decides what the
//! baseline does, with the expectation derived from the rule as its source states it (the
//! citations are in `docs/SCOREBOARD.md`, section "Baselines"). Weakening or strengthening
//! a rule in `sim/src/scoreboard/baselines.rs` fails the test named after it.

use relent::{KeyId, KeySpec, Provider, Target, Time, TransportError};
use relent_sim::respond::{self, Reply};
use relent_sim::scoreboard::baselines::{
    aws_bucket, AsyncOpenai, AwsStandard, Backon, Hermes, Litellm, PythonSdk, Vercel,
};
use relent_sim::scoreboard::caller::{Caller, Step};
use relent_sim::{FaultKind, HintFormat};
use std::sync::Arc;

const LATENCY: u64 = 300;

fn targets(provider: Provider, keys: u32, fallback: bool) -> Vec<Target> {
    let mut t = vec![Target::new(
        provider,
        "model",
        (1..=keys)
            .map(|i| KeySpec::new(i, format!("k{i}")))
            .collect(),
    )];
    if fallback {
        t.push(Target::new(
            Provider::Gemini,
            "fallback",
            vec![KeySpec::new(10, "f1")],
        ));
    }
    t
}

fn openai(keys: u32) -> Vec<Target> {
    targets(Provider::Openai, keys, false)
}

/// A reply with the given status, headers and body.
fn http(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    Reply::Http {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into(),
        body: Arc::from(body.as_bytes()),
    }
}

fn fault(p: Provider, kind: FaultKind) -> Reply {
    respond::fault(p, kind, 0, 0)
}

fn server_error() -> Reply {
    fault(Provider::Openai, FaultKind::ServerError)
}

fn ok() -> Reply {
    respond::success(Provider::Openai)
}

/// An OpenAI-shaped 429 rate limit with extra headers.
fn limited(headers: &[(&str, &str)]) -> Reply {
    let mut r = fault(
        Provider::Openai,
        FaultKind::RateLimited {
            hint: HintFormat::None,
        },
    );
    respond::add_headers(
        &mut r,
        headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    );
    r
}

/// What a caller did in one call.
#[derive(Debug, Default)]
struct Trace {
    /// (send time, target, key).
    sends: Vec<(u64, usize, KeyId)>,
    /// Every wait, in ms.
    waits: Vec<u64>,
    success: bool,
}

impl Trace {
    fn keys(&self) -> Vec<u32> {
        self.sends.iter().map(|s| s.2 .0).collect()
    }
    fn targets(&self) -> Vec<usize> {
        self.sends.iter().map(|s| s.1).collect()
    }
}

/// Plays one call: `reply(n, target, key)` answers the n-th send (0-based).
fn run(caller: &mut dyn Caller, mut reply: impl FnMut(usize, usize, KeyId) -> Reply) -> Trace {
    let mut trace = Trace::default();
    let mut now = 0;
    let mut step = caller.start(Time(now));
    for _ in 0..200 {
        match step {
            Step::Done(success) => {
                trace.success = success;
                return trace;
            }
            Step::Wait(until) => {
                trace.waits.push(until.0 - now);
                now = until.0;
                step = caller.on_wake(Time(now));
            }
            Step::Send { target, key } => {
                let r = reply(trace.sends.len(), target, key);
                trace.sends.push((now, target, key));
                now += if r == Reply::Hang { 60_000 } else { LATENCY };
                step = caller.on_reply(Time(now), &r);
            }
        }
    }
    panic!("the call did not end: {trace:?}");
}

fn always(r: Reply) -> impl FnMut(usize, usize, KeyId) -> Reply {
    move |_, _, _| r.clone()
}

/// Fails `n` times with `r`, then succeeds.
fn fails(n: usize, r: Reply) -> impl FnMut(usize, usize, KeyId) -> Reply {
    move |i, _, _| if i < n { r.clone() } else { ok() }
}

// ---------------------------------------------------------------- OpenAI / Anthropic SDK

#[test]
fn python_sdk_makes_two_retries() {
    let t = run(&mut PythonSdk::new(&openai(1), 1), always(server_error()));
    assert_eq!((t.sends.len(), t.success), (3, false));
}

#[test]
fn python_sdk_obeys_x_should_retry() {
    let mut no = server_error();
    respond::add_headers(&mut no, vec![("x-should-retry", "false".into())]);
    let t = run(&mut PythonSdk::new(&openai(1), 1), fails(1, no));
    assert_eq!(t.sends.len(), 1, "false: a 500 is not retried");
    let yes = http(400, &[("x-should-retry", "true")], "{}");
    let t = run(&mut PythonSdk::new(&openai(1), 1), fails(1, yes));
    assert_eq!(
        (t.sends.len(), t.success),
        (2, true),
        "true: a 400 is retried"
    );
}

#[test]
fn python_sdk_retries_408_409_429_and_5xx_only() {
    for status in [408, 409, 429, 500, 503, 529] {
        let t = run(
            &mut PythonSdk::new(&openai(1), 1),
            fails(1, http(status, &[], "{}")),
        );
        assert_eq!(t.sends.len(), 2, "{status} is retried");
    }
    for status in [400, 401, 402, 403, 404, 422] {
        let t = run(
            &mut PythonSdk::new(&openai(1), 1),
            fails(1, http(status, &[], "{}")),
        );
        assert_eq!(t.sends.len(), 1, "{status} is not retried");
    }
}

#[test]
fn python_sdk_retries_timeouts_and_connection_errors() {
    for r in [Reply::Hang, Reply::Transport(TransportError::Reset)] {
        let t = run(&mut PythonSdk::new(&openai(1), 1), fails(1, r.clone()));
        assert_eq!((t.sends.len(), t.success), (2, true), "{r:?}");
    }
}

#[test]
fn python_sdk_honours_a_server_wait_up_to_60_s() {
    for secs in ["20", "60"] {
        let t = run(
            &mut PythonSdk::new(&openai(1), 1),
            fails(1, limited(&[("retry-after", secs)])),
        );
        assert_eq!(t.waits, vec![secs.parse::<u64>().unwrap() * 1000]);
    }
}

#[test]
fn python_sdk_replaces_a_longer_server_wait_with_its_backoff_and_still_retries() {
    for secs in ["61", "90", "300"] {
        let t = run(
            &mut PythonSdk::new(&openai(1), 1),
            fails(1, limited(&[("retry-after", secs)])),
        );
        assert!(t.success);
        assert!((375..=500).contains(&t.waits[0]), "{secs}: {:?}", t.waits);
    }
}

#[test]
fn python_sdk_reads_retry_after_ms_first() {
    let r = limited(&[("retry-after-ms", "1500"), ("retry-after", "30")]);
    let t = run(&mut PythonSdk::new(&openai(1), 1), fails(1, r));
    assert_eq!(t.waits, vec![1_500]);
}

#[test]
fn python_sdk_backs_off_half_a_second_doubling_with_a_quarter_jitter() {
    let t = run(&mut PythonSdk::new(&openai(1), 9), always(server_error()));
    assert_eq!(t.waits.len(), 2);
    assert!((375..=500).contains(&t.waits[0]), "{:?}", t.waits);
    assert!((750..=1_000).contains(&t.waits[1]), "{:?}", t.waits);
}

#[test]
fn python_sdk_retries_insufficient_quota_like_any_429() {
    let quota = fault(Provider::Openai, FaultKind::QuotaExhausted { reset: false });
    let t = run(&mut PythonSdk::new(&openai(1), 7), always(quota));
    assert_eq!(t.sends.len(), 3);
}

// ---------------------------------------------------------------- Vercel AI SDK

#[test]
fn vercel_retries_twice_at_2_and_4_s_without_jitter() {
    let t = run(&mut Vercel::new(&openai(1)), always(server_error()));
    assert_eq!((t.sends.len(), t.waits.clone()), (3, vec![2_000, 4_000]));
}

#[test]
fn vercel_never_retries_a_timeout() {
    let t = run(&mut Vercel::new(&openai(1)), fails(1, Reply::Hang));
    assert_eq!((t.sends.len(), t.success), (1, false));
}

#[test]
fn vercel_retries_a_failed_fetch() {
    let t = run(
        &mut Vercel::new(&openai(1)),
        fails(1, Reply::Transport(TransportError::Reset)),
    );
    assert_eq!((t.sends.len(), t.success), (2, true));
}

#[test]
fn vercel_retries_408_409_429_and_5xx_only() {
    for status in [408, 409, 429, 500, 529] {
        let t = run(
            &mut Vercel::new(&openai(1)),
            fails(1, http(status, &[], "{}")),
        );
        assert_eq!(t.sends.len(), 2, "{status}");
    }
    for status in [400, 401, 402, 404] {
        let t = run(
            &mut Vercel::new(&openai(1)),
            fails(1, http(status, &[], "{}")),
        );
        assert_eq!(t.sends.len(), 1, "{status}");
    }
}

#[test]
fn vercel_uses_a_server_wait_under_60_s_or_under_its_own_delay() {
    let t = run(
        &mut Vercel::new(&openai(1)),
        fails(1, limited(&[("retry-after", "30")])),
    );
    assert_eq!(t.waits, vec![30_000]);
    let t = run(
        &mut Vercel::new(&openai(1)),
        fails(1, limited(&[("retry-after", "90")])),
    );
    assert_eq!(
        t.waits,
        vec![2_000],
        "90 s is neither under 60 s nor under 2 s"
    );
    let t = run(
        &mut Vercel::new(&openai(1)),
        fails(1, limited(&[("retry-after-ms", "700")])),
    );
    assert_eq!(t.waits, vec![700]);
}

// ---------------------------------------------------------------- backon

#[test]
fn backon_retries_every_error_three_times_doubling_from_1_s() {
    let dead = fault(Provider::Openai, FaultKind::KeyRejected);
    let t = run(&mut Backon::new(&openai(1)), always(dead));
    assert_eq!(
        (t.sends.len(), t.waits.clone()),
        (4, vec![1_000, 2_000, 4_000])
    );
}

// ---------------------------------------------------------------- async-openai

#[test]
fn async_openai_never_retries_insufficient_quota() {
    let quota = fault(Provider::Openai, FaultKind::QuotaExhausted { reset: false });
    let t = run(&mut AsyncOpenai::new(&openai(1)), always(quota));
    assert_eq!(t.sends.len(), 1);
}

#[test]
fn async_openai_uses_an_integer_retry_after_uncapped() {
    let t = run(
        &mut AsyncOpenai::new(&openai(1)),
        fails(1, limited(&[("retry-after", "300")])),
    );
    assert_eq!((t.waits.clone(), t.success), (vec![300_000], true));
}

#[test]
fn async_openai_ignores_a_retry_after_that_is_not_whole_seconds() {
    for value in ["1.5", "Wed, 21 Oct 2026 07:28:00 GMT"] {
        let t = run(
            &mut AsyncOpenai::new(&openai(1)),
            fails(1, limited(&[("retry-after", value)])),
        );
        assert_eq!(t.waits, vec![100], "{value}");
    }
    let t = run(
        &mut AsyncOpenai::new(&openai(1)),
        fails(1, limited(&[("retry-after-ms", "5000")])),
    );
    assert_eq!(t.waits, vec![100], "retry-after-ms is not read");
}

#[test]
fn async_openai_makes_three_retries_at_100_ms_doubling() {
    let t = run(&mut AsyncOpenai::new(&openai(1)), always(server_error()));
    assert_eq!((t.sends.len(), t.waits.clone()), (4, vec![100, 200, 400]));
}

#[test]
fn async_openai_counts_only_computed_waits_in_its_backoff() {
    let mut n = 0;
    let t = run(&mut AsyncOpenai::new(&openai(1)), |_, _, _| {
        n += 1;
        match n {
            1 => limited(&[("retry-after", "2")]),
            2 => server_error(),
            _ => ok(),
        }
    });
    assert_eq!(t.waits, vec![2_000, 100]);
}

#[test]
fn async_openai_retries_5xx_and_connect_errors_only() {
    for r in [
        http(502, &[], ""),
        http(529, &[], ""),
        Reply::Transport(TransportError::ConnectRefused),
        Reply::Transport(TransportError::Dns),
    ] {
        let t = run(&mut AsyncOpenai::new(&openai(1)), fails(1, r.clone()));
        assert_eq!(t.sends.len(), 2, "{r:?}");
    }
    for r in [
        Reply::Hang,
        Reply::Transport(TransportError::Reset),
        http(400, &[], "{}"),
        http(401, &[], "{}"),
        http(408, &[], "{}"),
    ] {
        let t = run(&mut AsyncOpenai::new(&openai(1)), fails(1, r.clone()));
        assert_eq!(t.sends.len(), 1, "{r:?}");
    }
}

#[test]
fn async_openai_gives_up_on_a_429_it_cannot_parse() {
    let t = run(
        &mut AsyncOpenai::new(&openai(1)),
        fails(1, http(429, &[], "Too Many Requests")),
    );
    assert_eq!(t.sends.len(), 1);
}

// ---------------------------------------------------------------- AWS standard

#[test]
fn aws_decides_throttling_by_error_code_not_by_429() {
    let t = run(
        &mut AwsStandard::new(&openai(1), 1, aws_bucket()),
        fails(1, limited(&[])),
    );
    assert_eq!(t.sends.len(), 1, "an OpenAI 429 has no throttling code");
    let bedrock = targets(Provider::Bedrock, 1, false);
    let throttled = fault(
        Provider::Bedrock,
        FaultKind::RateLimited {
            hint: HintFormat::None,
        },
    );
    let t = run(
        &mut AwsStandard::new(&bedrock, 1, aws_bucket()),
        fails(1, throttled),
    );
    assert_eq!((t.sends.len(), t.success), (2, true), "ThrottlingException");
    let body = http(
        400,
        &[],
        r#"{"__type":"com.amazon#SlowDown","message":"x"}"#,
    );
    let t = run(
        &mut AwsStandard::new(&openai(1), 1, aws_bucket()),
        fails(1, body),
    );
    assert_eq!(t.sends.len(), 2, "a throttling code in the body's __type");
}

#[test]
fn aws_retries_500_502_503_504_and_transport_errors_but_not_529() {
    for r in [
        http(500, &[], ""),
        http(502, &[], ""),
        http(503, &[], ""),
        http(504, &[], ""),
        Reply::Hang,
        Reply::Transport(TransportError::Reset),
    ] {
        let t = run(
            &mut AwsStandard::new(&openai(1), 1, aws_bucket()),
            fails(1, r.clone()),
        );
        assert_eq!(t.sends.len(), 2, "{r:?}");
    }
    let t = run(
        &mut AwsStandard::new(&openai(1), 1, aws_bucket()),
        fails(1, http(529, &[], "")),
    );
    assert_eq!(t.sends.len(), 1);
}

#[test]
fn aws_makes_three_attempts_with_full_jitter() {
    let t = run(
        &mut AwsStandard::new(&openai(1), 3, aws_bucket()),
        always(server_error()),
    );
    assert_eq!(t.sends.len(), 3);
    assert!(t.waits[0] < 1_000 && t.waits[1] < 2_000, "{:?}", t.waits);
}

#[test]
fn aws_retry_quota_is_spent_and_refunded() {
    let bucket = aws_bucket();
    let mut a = AwsStandard::new(&openai(1), 3, bucket.clone());
    let mut n = 0;
    let t = run(&mut a, |_, _, _| {
        n += 1;
        match n {
            1 => server_error(),
            2 => Reply::Hang,
            _ => ok(),
        }
    });
    assert!(t.success);
    assert_eq!(
        *bucket.borrow(),
        495 - 10 + 10,
        "5 + 10 spent, the last cost refunded"
    );
    let t = run(
        &mut AwsStandard::new(&openai(1), 4, bucket.clone()),
        always(ok()),
    );
    assert!(t.success);
    assert_eq!(*bucket.borrow(), 496, "a first-try success adds a token");
    *bucket.borrow_mut() = 4;
    let t = run(
        &mut AwsStandard::new(&openai(1), 5, bucket.clone()),
        fails(1, server_error()),
    );
    assert_eq!(t.sends.len(), 1, "an empty quota means no retry");
}

// ---------------------------------------------------------------- LiteLLM Router

#[test]
fn litellm_retries_at_once_on_another_healthy_deployment_after_a_429() {
    let t = run(
        &mut Litellm::new(&openai(2), 5),
        fails(1, limited(&[("retry-after", "30")])),
    );
    assert_eq!(t.waits, vec![0]);
    assert_ne!(
        t.keys()[0],
        t.keys()[1],
        "the 429 cooled the first deployment"
    );
    assert!(t.success);
}

#[test]
fn litellm_sleeps_the_original_retry_after_up_to_60_s_for_a_single_deployment() {
    let t = run(
        &mut Litellm::new(&openai(1), 5),
        fails(1, limited(&[("retry-after", "30")])),
    );
    assert_eq!(t.waits, vec![30_000]);
    let t = run(
        &mut Litellm::new(&openai(1), 5),
        fails(1, limited(&[("retry-after", "90")])),
    );
    assert!(
        (375..=500).contains(&t.waits[0]),
        "over 60 s: backoff, {:?}",
        t.waits
    );
}

#[test]
fn litellm_uses_the_header_or_the_backoff_not_the_larger() {
    let t = run(
        &mut Litellm::new(&openai(1), 5),
        fails(1, limited(&[("retry-after", "1")])),
    );
    assert_eq!(t.waits, vec![1_000]);
    let t = run(
        &mut Litellm::new(&openai(1), 5),
        always(limited(&[("retry-after", "1")])),
    );
    assert_eq!(
        t.waits,
        vec![1_000; 3],
        "every sleep reads the original error's header"
    );
}

#[test]
fn litellm_does_not_read_retry_after_ms() {
    let t = run(
        &mut Litellm::new(&openai(1), 5),
        fails(1, limited(&[("retry-after-ms", "20000")])),
    );
    assert!(t.waits[0] <= 500, "{:?}", t.waits);
}

#[test]
fn litellm_checks_should_retry_once_and_retries_a_400_and_a_402() {
    for status in [400, 402] {
        let t = run(
            &mut Litellm::new(&openai(1), 5),
            always(http(status, &[], "{}")),
        );
        assert_eq!(t.sends.len(), 3, "{status}: num_retries = 2");
    }
}

#[test]
fn litellm_never_retries_not_found() {
    let t = run(
        &mut Litellm::new(&openai(2), 5),
        always(http(404, &[], "{}")),
    );
    assert_eq!(t.sends.len(), 1);
}

#[test]
fn litellm_retries_auth_only_with_several_deployments() {
    let dead = fault(Provider::Openai, FaultKind::KeyRejected);
    let t = run(&mut Litellm::new(&openai(1), 5), always(dead.clone()));
    assert_eq!(t.sends.len(), 1);
    let t = run(&mut Litellm::new(&openai(2), 5), |_, _, k| {
        if k == KeyId(1) {
            dead.clone()
        } else {
            ok()
        }
    });
    assert!(t.success);
}

#[test]
fn litellm_does_not_cool_a_deployment_on_a_single_500() {
    // Both deployments stay healthy, so every retry is at once (zero sleep).
    let t = run(&mut Litellm::new(&openai(2), 5), always(server_error()));
    assert_eq!(t.sends.len(), 3);
    assert_eq!(t.waits, vec![0, 0, 0]);
}

#[test]
fn litellm_keeps_retrying_when_no_deployment_is_healthy_later() {
    // Both deployments answer 429 with retry-after 10 for the first 10 s.
    let t = run(&mut Litellm::new(&openai(2), 5), |i, _, _| {
        if i < 2 {
            limited(&[("retry-after", "10")])
        } else {
            ok()
        }
    });
    assert!(t.success, "{t:?}");
    assert_eq!(t.waits[..2], [0, 10_000], "{t:?}");
}

#[test]
fn litellm_sends_a_context_window_error_to_the_fallback_group() {
    let small = targets(Provider::Openai, 1, true);
    let overflow = fault(Provider::Openai, FaultKind::ContextOverflow);
    let t = run(&mut Litellm::new(&small, 5), |_, target, _| {
        if target == 0 {
            overflow.clone()
        } else {
            ok()
        }
    });
    assert_eq!((t.targets(), t.success), (vec![0, 1], true));
}

#[test]
fn litellm_falls_back_after_its_retries() {
    let two = targets(Provider::Openai, 1, true);
    let t = run(&mut Litellm::new(&two, 5), |_, target, _| {
        if target == 0 {
            server_error()
        } else {
            ok()
        }
    });
    assert_eq!(t.targets(), vec![0, 0, 0, 1]);
}

// ---------------------------------------------------------------- hermes-agent

fn anthropic(keys: u32, fallback: bool) -> Vec<Target> {
    targets(Provider::Anthropic, keys, fallback)
}

#[test]
fn hermes_does_not_retry_a_single_keys_401() {
    let dead = fault(Provider::Anthropic, FaultKind::KeyRejected);
    let t = run(&mut Hermes::new(&anthropic(1, false), 1), always(dead));
    assert_eq!((t.sends.len(), t.success), (1, false));
}

#[test]
fn hermes_rotates_at_once_on_a_401_in_a_pool() {
    let dead = fault(Provider::Anthropic, FaultKind::KeyRejected);
    let t = run(&mut Hermes::new(&anthropic(2, false), 1), fails(1, dead));
    assert_eq!((t.keys(), t.waits.len(), t.success), (vec![1, 2], 0, true));
}

#[test]
fn hermes_does_not_retry_a_single_keys_402() {
    let broke = fault(
        Provider::Deepseek,
        FaultKind::QuotaExhausted { reset: false },
    );
    let t = run(
        &mut Hermes::new(&targets(Provider::Deepseek, 1, false), 1),
        always(broke),
    );
    assert_eq!(t.sends.len(), 1);
}

#[test]
fn hermes_reads_a_400_credit_balance_as_billing_and_rotates() {
    let broke = fault(
        Provider::Anthropic,
        FaultKind::QuotaExhausted { reset: false },
    );
    let t = run(
        &mut Hermes::new(&anthropic(2, false), 1),
        fails(1, broke.clone()),
    );
    assert_eq!((t.keys(), t.waits.len(), t.success), (vec![1, 2], 0, true));
    let t = run(&mut Hermes::new(&anthropic(1, false), 1), always(broke));
    assert_eq!(t.sends.len(), 1, "billing is not retried");
}

#[test]
fn hermes_makes_three_attempts() {
    let t = run(&mut Hermes::new(&openai(1), 1), always(limited(&[])));
    assert_eq!(
        (t.sends.len(), t.success),
        (3, false),
        "a rate limit gets no recovery ladder"
    );
}

#[test]
fn hermes_retries_the_same_key_on_the_first_429_and_rotates_on_the_second() {
    let t = run(&mut Hermes::new(&openai(2), 1), |_, _, k| {
        if k == KeyId(1) {
            limited(&[])
        } else {
            ok()
        }
    });
    assert_eq!(t.keys(), vec![1, 1, 2]);
    assert_eq!(
        t.waits.len(),
        1,
        "a wait before the same-key retry, none before the rotation"
    );
}

#[test]
fn hermes_backs_off_2_s_doubling_with_half_jitter() {
    let t = run(&mut Hermes::new(&openai(1), 4), always(limited(&[])));
    assert!((2_000..=3_000).contains(&t.waits[0]), "{:?}", t.waits);
    assert!((4_000..=6_000).contains(&t.waits[1]), "{:?}", t.waits);
}

#[test]
fn hermes_reads_retry_after_but_not_retry_after_ms() {
    let t = run(
        &mut Hermes::new(&openai(1), 4),
        fails(1, limited(&[("retry-after", "7")])),
    );
    assert_eq!(t.waits, vec![7_000]);
    let t = run(
        &mut Hermes::new(&openai(1), 4),
        fails(1, limited(&[("retry-after-ms", "7000")])),
    );
    assert!(
        (2_000..=3_000).contains(&t.waits[0]),
        "its own backoff: {:?}",
        t.waits
    );
}

#[test]
fn hermes_benches_keys_by_reason_and_cuts_only_a_sole_keys_throttle() {
    let ttl = |h: &Hermes| h.bench_ttl_ms(KeyId(1));
    let twice = |i: usize, _: usize, _: KeyId| if i < 2 { limited(&[]) } else { ok() };
    // A pool of two: a 429 benches the key for an hour, a 401 for 300 s.
    let mut h = Hermes::new(&openai(2), 1);
    run(&mut h, twice);
    assert_eq!(ttl(&h), Some(3_600_000));
    let mut h = Hermes::new(&openai(2), 1);
    run(
        &mut h,
        fails(1, fault(Provider::Openai, FaultKind::KeyRejected)),
    );
    assert_eq!(ttl(&h), Some(300_000));
    // A sole key: its 429 cools 60 s; its 401 keeps 300 s and billing the hour.
    let mut h = Hermes::new(&openai(1), 1);
    run(&mut h, twice);
    assert_eq!(ttl(&h), Some(60_000));
    let mut h = Hermes::new(&openai(1), 1);
    run(
        &mut h,
        always(fault(Provider::Openai, FaultKind::KeyRejected)),
    );
    assert_eq!(ttl(&h), Some(300_000));
    let deepseek = targets(Provider::Deepseek, 1, false);
    let mut h = Hermes::new(&deepseek, 1);
    run(
        &mut h,
        always(fault(
            Provider::Deepseek,
            FaultKind::QuotaExhausted { reset: false },
        )),
    );
    assert_eq!(ttl(&h), Some(3_600_000));
    // A server's reset overrides the table.
    let mut h = Hermes::new(&openai(2), 1);
    run(&mut h, |i, _, _| {
        if i < 2 {
            limited(&[("retry-after", "7")])
        } else {
            ok()
        }
    });
    assert_eq!(ttl(&h), Some(7_000));
}

#[test]
fn hermes_climbs_the_recovery_ladder_after_its_retries() {
    let overloaded = fault(Provider::Anthropic, FaultKind::Overloaded);
    let t = run(
        &mut Hermes::new(&anthropic(1, false), 2),
        always(overloaded),
    );
    // 3 attempts, then 5 cycles of a ladder wait and 3 attempts.
    assert_eq!(t.sends.len(), 18);
    let ladder: Vec<u64> = [2, 5, 8, 11, 14].iter().map(|i| t.waits[*i]).collect();
    for (w, base) in ladder.iter().zip([15_000, 30_000, 60_000, 60_000, 60_000]) {
        assert!((base..=base * 12 / 10).contains(w), "ladder {ladder:?}");
    }
}

#[test]
fn hermes_ladder_honours_a_retry_after_up_to_120_s() {
    let mut busy = fault(Provider::Openai, FaultKind::Overloaded);
    respond::add_headers(&mut busy, vec![("retry-after", "300".into())]);
    let t = run(&mut Hermes::new(&openai(1), 2), |i, _, _| {
        if i < 3 {
            busy.clone()
        } else {
            ok()
        }
    });
    assert_eq!(t.waits[2], 120_000, "{:?}", t.waits);
}

#[test]
fn hermes_falls_back_to_the_next_model_before_the_ladder() {
    let t = run(&mut Hermes::new(&anthropic(1, true), 2), |_, target, _| {
        if target == 0 {
            server_error()
        } else {
            ok()
        }
    });
    assert_eq!((t.targets(), t.success), (vec![0, 0, 0, 1], true));
}

#[test]
fn hermes_sends_a_non_retryable_error_to_the_fallback_model() {
    let t = run(&mut Hermes::new(&anthropic(1, true), 2), |_, target, _| {
        if target == 0 {
            fault(Provider::Anthropic, FaultKind::ContextOverflow)
        } else {
            ok()
        }
    });
    assert_eq!((t.targets(), t.success), (vec![0, 1], true));
}
