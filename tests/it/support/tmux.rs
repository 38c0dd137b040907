//! A terminal for the tests: a tmux server of our own (`tmux -L <unique
//! name>`) with one pane running a plain shell, typed into with
//! `send-keys` and read with `capture-pane`, killed on drop whatever
//! happens. The screen can only be polled: every wait polls in small steps
//! under a deadline. Without tmux, [`Tmux::start`] skips loudly (see
//! [`require_peer`]).

use std::io::Write;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{load, require_peer};

/// How long any one screen wait may take: a loaded machine draws late.
const DEADLINE: Duration = Duration::from_secs(30);

/// Polling step for the screen.
const POLL: Duration = Duration::from_millis(50);

/// One tmux server of our own, with one 100x30 pane running a plain shell.
pub struct Tmux {
    socket: String,
    /// Keeps a test that runs alone waiting (see [`load`]).
    _busy: load::Busy,
}

impl Tmux {
    /// Starts the server, or returns `None` (having said why) without tmux.
    pub fn start() -> Option<Tmux> {
        if !require_peer("tmux") {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "duplex-view-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmux = Tmux {
            socket,
            _busy: load::busy(),
        };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "30",
            "env",
            "PS1=shell$ ",
            "bash",
            "--norc",
            "--noprofile",
        ]);
        tmux.wait_for("the shell prompt", |screen| screen.contains("shell$"));
        Some(tmux)
    }

    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux {args:?}: {e}"));
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `C-d`, `C-c`).
    pub fn press(&self, key: &str) {
        self.run(&["send-keys", key]);
    }

    /// Types a shell command line and runs it.
    pub fn shell(&self, line: &str) {
        self.type_text(line);
        self.press("Enter");
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p"]).stdout).into_owned()
    }

    /// Polls the screen until `ready` holds; returns that screen.
    #[track_caller]
    pub fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {DEADLINE:?} waiting for {what}; the screen:\n{screen}"
            );
            thread::sleep(POLL);
        }
    }

    /// Waits for the shell's `exit=N` line (see [`super::shell_exit`]) and
    /// requires `code`; returns the screen then.
    #[track_caller]
    pub fn wait_exit(&self, code: i32) -> String {
        let screen = self.wait_for("`exit=N`", |s| super::shell_exit(s).is_some());
        assert_eq!(super::shell_exit(&screen), Some(code), "{screen}");
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if thread::panicking() {
            // Not `self.screen()`: a second panic here would abort the run.
            if let Ok(out) = Command::new("tmux")
                .args(["-L", &self.socket, "capture-pane", "-p"])
                .output()
            {
                let screen = String::from_utf8_lossy(&out.stdout);
                let _ = writeln!(std::io::stderr(), "--- screen ---\n{screen}");
            }
        }
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}
