//! A small QMP client: commands with their replies, and the asynchronous
//! events that arrive in between.
//!
//! Messages are untyped `serde_json::Value`s. The typed QMP crate (`qapi`)
//! does not fit: its commands and events are generated from one QEMU
//! release's schema (9.1 in qapi 0.15) while the suite needs QEMU 10, it
//! reads events only by polling with a no-op command, so waiting for one
//! with a deadline would stay code of our own, and the handful of
//! commands the scenarios send gain little from types.

use super::*;

/// A QMP connection (QEMU's JSON monitor, docs/interop/qmp-spec.rst).
pub struct Qmp {
    rd: BufReader<UnixStream>,
    wr: UnixStream,
    /// Asynchronous events seen so far, oldest first.
    pub events: Vec<Value>,
    /// Transcript of the QMP traffic, kept next to the serial log.
    log: Option<std::fs::File>,
}

impl Qmp {
    pub(super) fn connect(
        path: &Path,
        timeout: Duration,
        log: Option<std::fs::File>,
    ) -> Result<Qmp> {
        let deadline = Instant::now() + timeout;
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("QMP socket {}: {e}", path.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let wr = s.try_clone().ctx("clone QMP socket")?;
        let mut q = Qmp {
            rd: BufReader::new(s),
            wr,
            events: Vec::new(),
            log,
        };
        let greeting = q.read_msg(Duration::from_secs(10))?;
        if greeting.get("QMP").is_none() {
            return Err(format!("unexpected QMP greeting {greeting}"));
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    fn read_msg(&mut self, timeout: Duration) -> Result<Value> {
        self.rd
            .get_ref()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .ctx("QMP timeout")?;
        let mut line = String::new();
        let n = self.rd.read_line(&mut line).ctx("QMP read")?;
        if n == 0 {
            return Err("QMP connection closed".into());
        }
        if let Some(f) = self.log.as_mut() {
            let _ = write!(f, "<- {line}");
        }
        serde_json::from_str(line.trim()).map_err(|e| format!("bad QMP message {line:?}: {e}"))
    }

    /// Runs a command; returns its "return" value or the QMP error.
    pub fn execute(&mut self, cmd: &str, args: Option<Value>) -> Result<Value> {
        let mut msg = serde_json::json!({ "execute": cmd });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        let text = msg.to_string();
        if let Some(f) = self.log.as_mut() {
            let _ = writeln!(f, "-> {text}");
        }
        self.wr
            .write_all(format!("{text}\n").as_bytes())
            .ctx("QMP write")?;
        loop {
            let m = self.read_msg(Duration::from_secs(30))?;
            if m.get("event").is_some() {
                self.events.push(m);
                continue;
            }
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                return Err(format!("QMP {cmd} failed: {e}"));
            }
        }
    }

    /// Waits for an event satisfying `pred` (also looks at events already
    /// received, and consumes the one it returns).
    pub fn wait_event(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        if let Some(i) = self.events.iter().position(&pred) {
            return Ok(self.events.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("timeout waiting for QMP event {what}"));
            }
            match self.read_msg(deadline - now) {
                Ok(m) => {
                    if m.get("event").is_some() {
                        if pred(&m) {
                            return Ok(m);
                        }
                        self.events.push(m);
                    }
                }
                Err(e)
                    if e.contains("timed out")
                        || e.contains("WouldBlock")
                        || e.contains("temporarily unavailable") => {}
                Err(e) => return Err(e),
            }
        }
    }
}
