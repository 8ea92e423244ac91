//! The host side of the EL3 firmware's control channel (README "Runtime
//! vCPU hotplug"): a line client on the Unix socket QEMU serves for the
//! secure UART (`-chardev socket,id=ctl,path=PATH,server=on,wait=off
//! -serial mon:stdio -serial chardev:ctl`). `cargo xtask cpu` and the test
//! scenarios use it.
//!
//! A client resynchronises first (a CAN byte drops whatever partial line a
//! dead client left) and tags each command with a request id of its own
//! (`@<pid>.<n> status`); it takes only the lines that carry that id as its
//! answers, keeps untagged lines (`event: boot ...`) as events, and skips
//! lines tagged for other clients.

use crate::util::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// ASCII CAN: the firmware drops a partial line (`resident::hotplug::RESYNC`).
const RESYNC: u8 = 0x18;

pub struct Control {
    stream: UnixStream,
    pending: Vec<u8>,
    /// Request ids are `@<prefix>.<n>`: the prefix (this process's id
    /// unless set), ids sent so far, and the id of the last command.
    prefix: String,
    sent: u32,
    last: String,
    /// Event lines (`event: ...`, and errors that were not an answer)
    /// seen while waiting, in order.
    pub events: Vec<String>,
}

impl Control {
    /// Connects, retrying until `timeout` (QEMU may not listen yet), and
    /// resynchronises the channel.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Control> {
        let mut c = Control::connect_raw(path, timeout)?;
        c.send_raw(&[RESYNC])?;
        Ok(c)
    }

    /// Connects without resynchronising (as a plain `socat` would).
    pub fn connect_raw(path: &Path, timeout: Duration) -> Result<Control> {
        let t = Instant::now();
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    return Ok(Control {
                        stream,
                        pending: Vec::new(),
                        prefix: std::process::id().to_string(),
                        sent: 0,
                        last: String::new(),
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

    /// Tags the next commands `@<prefix>.<sent + 1>` on: a client that
    /// reconnects keeps its ids unique (at most 16 characters in all).
    pub fn with_ids(mut self, prefix: &str, sent: u32) -> Control {
        self.prefix = prefix.to_string();
        self.sent = sent;
        self
    }

    /// How many request ids this client has used.
    pub fn ids_sent(&self) -> u32 {
        self.sent
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

    /// Sends one command with a fresh request id and returns its answer
    /// (`ok ...` or `error: ...`, the id taken off); untagged lines that
    /// arrive first go to `events`, lines for other clients are skipped.
    pub fn command(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.sent += 1;
        self.last = format!("{}.{}", self.prefix, self.sent);
        self.send_raw(format!("@{} {cmd}\n", self.last).as_bytes())?;
        let id = self.last.clone();
        self.tagged(&id, timeout, |_| true)
    }

    /// The next line tagged `id` for which `want` holds (id taken off).
    fn tagged(&mut self, id: &str, timeout: Duration, want: fn(&str) -> bool) -> Result<String> {
        let tag = format!("@{id} ");
        let deadline = Instant::now() + timeout;
        loop {
            let l = self.line(deadline.saturating_duration_since(Instant::now()))?;
            match l.strip_prefix(&tag) {
                Some(r) if want(r) => return Ok(r.to_string()),
                Some(_) => self.events.push(l),
                None if l.starts_with('@') => {}
                None => self.events.push(l),
            }
        }
    }

    /// The next untagged `ok`/`error:` line (the answer to a command sent
    /// raw, without an id); untagged events before it go to `events`.
    pub fn answer(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let l = self.line(deadline.saturating_duration_since(Instant::now()))?;
            if l.starts_with("ok") || l.starts_with("error:") {
                return Ok(l);
            }
            if !l.starts_with('@') {
                self.events.push(l);
            }
        }
    }

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

    /// The request id of the last command sent.
    pub fn last_id(&self) -> &str {
        &self.last
    }

    /// Waits for the line that ends the change the last command started:
    /// `event: ... done` or an `error:` with its id (taken off).
    pub fn change_result(&mut self, timeout: Duration) -> Result<String> {
        let id = self.last.clone();
        self.tagged(&id, timeout, is_result)
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
