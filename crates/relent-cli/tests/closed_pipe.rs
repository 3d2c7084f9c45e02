//! A reader that stops reading (`relent … | head -1`) ends relent quietly: status 141, as a
//! Unix tool ended by SIGPIPE, and no panic message on standard error.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

#[test]
fn a_closed_pipe_ends_the_program_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relent"))
        .args(["classify", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relent starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    // Read one line of output, then close the pipe while relent still has lines to write.
    let mut first = [0u8; 1];
    stdin
        .write_all(b"{\"provider\":\"openai\",\"status\":429,\"body\":\"slow down\"}\n")
        .expect("first line");
    stdout.read_exact(&mut first).expect("relent answers");
    drop(stdout);
    let line = b"{\"provider\":\"openai\",\"status\":429,\"body\":\"slow down\"}\n".repeat(1000);
    // relent may end before it has read all of this: a failed write here is expected.
    for _ in 0..200 {
        if stdin.write_all(&line).is_err() {
            break;
        }
    }
    drop(stdin);
    let output = child.wait_with_output().expect("relent ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}
