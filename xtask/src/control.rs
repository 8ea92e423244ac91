//! The host side of the EL3 firmware's control channel (README "Runtime
//! vCPU hotplug"): a line client on the Unix socket QEMU serves for the
//! secure UART (`-chardev socket,id=ctl,path=PATH,server=on,wait=off
//! -serial mon:stdio -serial chardev:ctl`). `cargo xtask cpu` and the test
//! scenarios use it.

use crate::util::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Control {
    stream: UnixStream,
    pending: Vec<u8>,
    /// Event lines (`event: ...`, and errors that were not an answer)
    /// seen while waiting, in order.
    pub events: Vec<String>,
}

impl Control {
    /// Connects, retrying until `timeout` (QEMU may not listen yet).
    pub fn connect(path: &Path, timeout: Duration) -> Result<Control> {
        let t = Instant::now();
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    return Ok(Control {
                        stream,
                        pending: Vec::new(),
                        events: Vec::new(),
                    })
                }
                Err(e) if t.elapsed() >= timeout => {
                    return Err(format!("cannot connect to {}: {e}", path.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The next line from the firmware within `timeout`.
    pub fn line(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.pending.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&l).trim_end().to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no line from the firmware's control channel in time".into());
            }
            self.stream
                .set_read_timeout(Some(left))
                .ctx("socket timeout")?;
            let mut buf = [0u8; 512];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("the control channel closed".into()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                // A signal to this process (a child VM ending) interrupts the
                // read: retried like a timeout.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("control channel: {e}")),
            }
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .ctx("write to the control channel")
    }

    /// Sends one command and returns its answer (`ok ...` or `error: ...`);
    /// event lines that arrive first go to `events`.
    pub fn command(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.send_raw(format!("{cmd}\n").as_bytes())?;
        self.answer(timeout)
    }

    /// The next `ok`/`error:` line; events before it go to `events`.
    pub fn answer(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let l = self.line(deadline.saturating_duration_since(Instant::now()))?;
            if l.starts_with("ok") || l.starts_with("error:") {
                return Ok(l);
            }
            self.events.push(l);
        }
    }

    /// Waits for the line that ends the change in flight: `event: ... done`
    /// or an `error:`; earlier events stay in `events`.
    /// Runs one change: `cmd` must be answered `ok ... pending=...` within
    /// `answer` and end with `event: <cmd> done` within `done`.
    pub fn change(&mut self, cmd: &str, answer: Duration, done: Duration) -> Result<()> {
        let a = self.command(cmd, answer)?;
        if !a.starts_with("ok ") || !a.contains(" pending=") {
            return Err(format!("`{cmd}` answered `{a}`"));
        }
        let r = self.change_result(done)?;
        if r != format!("event: {cmd} done") {
            return Err(format!("`{cmd}` ended with `{r}`"));
        }
        Ok(())
    }

    pub fn change_result(&mut self, timeout: Duration) -> Result<String> {
        if let Some(i) = self.events.iter().position(|l| is_result(l)) {
            return Ok(self.events.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let l = self.line(deadline.saturating_duration_since(Instant::now()))?;
            if is_result(&l) {
                return Ok(l);
            }
            self.events.push(l);
        }
    }
}

fn is_result(l: &str) -> bool {
    (l.starts_with("event: ") && l.ends_with(" done")) || l.starts_with("error:")
}

/// `cargo xtask cpu --socket PATH <command...>`: sends the command, prints
/// the answer and, when it started a change, the line that ends it.
pub fn cli(socket: &Path, words: &[String], wait: Duration) -> Result<i32> {
    if words.is_empty() {
        return Err("cpu needs a command: enable <cpus>, disable <cpus>, status, help".into());
    }
    let mut c = Control::connect(socket, Duration::from_secs(5))?;
    let answer = c.command(&words.join(" "), Duration::from_secs(10))?;
    println!("{answer}");
    if answer.starts_with("error:") {
        return Ok(1);
    }
    if answer.contains(" pending=") {
        let r = c.change_result(wait)?;
        println!("{r}");
        if r.starts_with("error:") {
            return Ok(1);
        }
    }
    Ok(0)
}
