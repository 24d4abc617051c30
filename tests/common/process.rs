//! The `eddy` binary as a child process: started on a free port in a data directory, its URL
//! read from the log, killed when the test ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const EDDY: &str = env!("CARGO_BIN_EXE_eddy");

/// A child process that is killed when the test ends, even by a failed assertion.
pub struct Node(pub Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `eddy standalone` on a free port and returns it with its base URL (read from the log).
pub fn spawn_standalone(data_dir: &std::path::Path) -> (Node, String) {
    spawn_standalone_with(data_dir, &[])
}

/// Like [`spawn_standalone`], with extra environment variables.
pub fn spawn_standalone_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> (Node, String) {
    let mut cmd = Command::new(EDDY);
    cmd.args([
        "standalone",
        "--http-addr",
        "127.0.0.1:0",
        "--flight-addr",
        "127.0.0.1:0",
        "--collector-addr",
        "",
        "--data-dir",
    ])
    .arg(data_dir)
    .env("RUST_LOG", "info")
    .env("NO_COLOR", "1")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn eddy");
    let mut child = Node(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://127.0.0.1:") {
                let url: String = line[i..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
                    .collect();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the log names the bound address");
    (child, url)
}

pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("eddy did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
