//! Every program in `examples/` runs to completion (cargo builds the
//! examples before running the tests, next to this test binary).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const EXAMPLES: &[&str] = &[
    "generator",
    "pipeline",
    "fan_out_fan_in",
    "worker_pool",
    "timeout_select",
    "rate_limit",
    "semaphore_chan",
    "done_cancel",
    "leak",
    "race_mutex",
    "waitgroup_fanout",
    "leak_context",
    "task_dump",
    "valgrind_smoke",
    "errgroup_fanout",
    "tokio_bridge",
    "retry_timer",
    "echo_server",
    "chat_server",
    "http_server",
    "fan_out_client",
    "file_pipeline",
];

fn example_path(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir.join("examples").join(name)
}

#[test]
fn every_example_runs_to_completion() {
    for name in EXAMPLES {
        let path = example_path(name);
        if !path.exists() {
            // `cargo test --test examples` alone does not build examples.
            eprintln!(
                "skipping {name}: {} not built (run `cargo test --workspace`)",
                path.display()
            );
            continue;
        }
        let child = Command::new(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let pid = child.id() as libc::pid_t;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(child.wait_with_output());
        });
        let output = match done_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(output) => output.expect("wait for example"),
            Err(_) => {
                // SAFETY: kill(2) on the pid of our own child process.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("example {name} did not finish within 60 s");
            }
        };
        let status = output.status;
        assert!(
            status.success(),
            "example {name} failed: {status}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
