//! Runtime vCPU hotplug at EL3: the host's control-channel protocol and the
//! state machine between the host, the firmware's PSCI policy and Linux's
//! ACPI processor hotplug (Linux `Documentation/arch/arm64/cpu-hotplug.rst`).
//!
//! Every possible vCPU exists from the start; "enabled" is the firmware's
//! policy. The authoritative copy is the `enabled` flag of each vCPU in
//! [`CpuStates`] (secure memory: CPU_ON of a disabled vCPU is DENIED). Linux
//! sees a copy in the shared block, which its AML reads and writes:
//!
//! ```text
//! per possible vCPU i, SLOT bytes at i * SLOT:
//!   +0 u8  STA  bit 0: enabled (firmware; `_EJ0` clears it)
//!   +1 u8  NTF  Notify code for the GED's `_EVT` to deliver, 0 none
//!   +2 u8  EJ   1 once `_EJ0` ran
//!   +4 u32 OST  `_OST`: bit 31 valid, 23:16 status, 15:0 source event
//! ```
//!
//! Nothing the guest writes there is trusted: an `_EJ0` only counts when
//! PSCI also has the vCPU off, and STA is rewritten from the policy.
//!
//! A change: `enable L` enables the vCPUs at once (CPU_ON may start them)
//! and asks Linux to look (Notify device check); done when Linux's `_OST`
//! reports success. `disable L` only asks (Notify eject request): Linux
//! offlines the vCPU (CPU_OFF), runs `_EJ0` and reports; only then is the
//! vCPU disabled. The firmware never stops a vCPU behind Linux's back. One
//! change runs at a time; another command that would change something gets
//! an error while one is in flight (`status` always works), and a change
//! Linux does not finish within the timeout is abandoned with an error line.
//!
//! The channel has no framing but lines, and its clients come and go (a
//! management agent that dies mid-line and reconnects), so it resynchronises:
//! a partial line is dropped after [`IDLE_MS`] without input and at a CAN
//! byte ([`RESYNC`]); a line may carry a request id (`@7 status`) that every
//! line answering it echoes (`@7 ok ...`, `@7 event: ... done`), so a client
//! can tell its answers from stale ones. The runtime policy outlives a
//! reset in secure RAM ([`record`]).

use core::fmt::{self, Write};

use crate::platform::cpulist::{parse_list, CpuSet, BOOT_CPU};
use crate::psci::{CpuStates, Power};

pub mod record;

/// Bytes of shared block per possible vCPU (layout above).
pub const SLOT: usize = 8;
pub const STA: usize = 0;
pub const NTF: usize = 1;
pub const EJ: usize = 2;
pub const OST: usize = 4;
/// Notify values (ACPI 6.5 table 5.207): device check, eject request.
pub const DEVICE_CHECK: u8 = 1;
pub const EJECT_REQUEST: u8 = 3;
/// `_OST` status "ejection in progress" for an eject request (ACPI 6.5
/// 6.3.5, table 6.184; Linux `ACPI_OST_SC_EJECT_IN_PROGRESS`), which Linux
/// reports before it starts; not an answer.
const OST_IN_PROGRESS: u32 = 0x84;
const OST_VALID: u32 = 1 << 31;
/// Longest command line taken; the longest sensible one is a CPU list.
pub const LINE_MAX: usize = 120;
/// A partial line is dropped when no byte came for this long. A live client
/// writes a line at once (socat sends what was typed at Enter; QEMU hands
/// it over in milliseconds even on a loaded host), while a client that
/// died mid-line is replaced no sooner than someone notices and starts
/// another; a line split by a longer stall loses its start and gets an
/// error, never runs as another command.
pub const IDLE_MS: u64 = 1000;
/// ASCII CAN ("disregard the preceding data"): drops a partial line, with
/// no answer. It cannot occur in a valid line (printable ASCII only), and,
/// unlike a resync line, a single byte works whatever state the dead
/// client left (mid-line, overlong): a line would itself be glued on.
pub const RESYNC: u8 = 0x18;
/// Longest request id: `@` and 1 to 16 of `A-Za-z0-9._-`.
pub const ID_MAX: usize = 16;

/// The block Linux's AML shares with the firmware, one byte at a time (the
/// firmware maps it as normal memory; tests use a plain buffer).
pub trait Shared {
    fn get(&self, off: usize) -> u8;
    fn set(&mut self, off: usize, v: u8);
}

fn ost(sh: &dyn Shared, i: usize) -> Option<(u32, u32)> {
    let o = i * SLOT + OST;
    let v = u32::from_le_bytes([sh.get(o), sh.get(o + 1), sh.get(o + 2), sh.get(o + 3)]);
    (v & OST_VALID != 0).then_some((v & 0xffff, (v >> 16) & 0xff))
}

fn reset_slot(sh: &mut dyn Shared, i: usize, enabled: bool, notify: u8) {
    for b in 0..SLOT {
        sh.set(i * SLOT + b, 0);
    }
    sh.set(i * SLOT + STA, enabled as u8);
    sh.set(i * SLOT + NTF, notify);
}

/// Writes every slot from the policy, nothing pending (at boot).
pub fn init_shared(states: &CpuStates, sh: &mut dyn Shared) {
    for i in 0..states.len() {
        reset_slot(sh, i, states.enabled(i), 0);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Enable,
    Disable,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Enable => "enable",
            Kind::Disable => "disable",
        }
    }
}

/// A request id as received (empty: none); prints as `@id `.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    id: [u8; ID_MAX],
    len: u8,
}

/// A request id's characters: 1 to [`ID_MAX`] of `A-Za-z0-9._-`.
fn valid_id(id: &[u8]) -> bool {
    (1..=ID_MAX).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

impl Tag {
    /// Splits `@id rest` into the id and the rest; a line without `@` has
    /// none. Err: a malformed id.
    fn split(line: &[u8]) -> Result<(Tag, &[u8]), ()> {
        let Some(rest) = line.strip_prefix(b"@") else {
            return Ok((Tag::default(), line));
        };
        let n = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let (id, rest) = rest.split_at(n);
        Tag::new(id)
            .filter(|_| valid_id(id))
            .map(|t| (t, rest))
            .ok_or(())
    }

    /// The id `b`, if it has 1 to [`ID_MAX`] bytes (not checked further).
    pub fn new(b: &[u8]) -> Option<Tag> {
        let mut t = Tag::default();
        t.id.get_mut(..b.len())
            .filter(|_| !b.is_empty())?
            .copy_from_slice(b);
        t.len = b.len() as u8;
        Some(t)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.id[..usize::from(self.len).min(ID_MAX)]
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Built from checked ids only (`split`, a checked record): ASCII.
        match core::str::from_utf8(self.as_bytes()) {
            Ok("") | Err(_) => Ok(()),
            Ok(id) => write!(f, "@{id} "),
        }
    }
}

/// `out` with `tag` in front of every line. The answers never hold a line
/// break but at the end of a piece they are written in, so only the piece
/// after one needs looking at.
struct Tagged<'a> {
    out: &'a mut dyn Write,
    tag: Tag,
    start: bool,
}

impl<'a> Tagged<'a> {
    fn new(out: &'a mut dyn Write, tag: Tag) -> Self {
        Tagged {
            out,
            tag,
            start: true,
        }
    }
}

impl Write for Tagged<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if core::mem::take(&mut self.start) {
            write!(self.out, "{}", self.tag)?;
        }
        self.start = s.as_bytes().last() == Some(&b'\n');
        self.out.write_str(s)
    }
}

struct Change {
    kind: Kind,
    /// The id of the command that started it, for its closing line.
    tag: Tag,
    cpus: CpuSet,
    /// The vCPUs Linux has not answered for yet.
    waiting: CpuSet,
    /// Those it has refused.
    refused: CpuSet,
    /// When the firmware first saw each vCPU ejected and off (counter
    /// ticks), while it waits for Linux's closing `_OST`.
    ejected_at: alloc::vec::Vec<Option<u64>>,
    deadline: u64,
}

/// The host's side: reads command lines, runs one change at a time.
pub struct Controller {
    line: [u8; LINE_MAX],
    len: usize,
    overlong: bool,
    /// When the last byte came (counter ticks), for [`IDLE_MS`].
    last: u64,
    change: Option<Change>,
    /// Counter ticks per second.
    freq: u64,
    /// How long Linux may take to answer a change.
    timeout_s: u64,
    /// vCPUs whose disable timed out: Linux may still finish it.
    late: Option<CpuSet>,
}

impl Controller {
    /// `freq`: counter ticks per second; `timeout_s`: the answer timeout.
    pub fn new(freq: u64, timeout_s: u64) -> Self {
        Controller {
            line: [0; LINE_MAX],
            len: 0,
            overlong: false,
            last: 0,
            change: None,
            freq,
            timeout_s,
            late: None,
        }
    }

    /// A change is waiting for Linux: poll it (see [`Self::poll`]).
    pub fn busy(&self) -> bool {
        self.change.is_some()
    }

    /// Takes bytes from the channel and answers every complete line on
    /// `out`. True when Linux must be told (raise the GED).
    pub fn input(
        &mut self,
        bytes: &[u8],
        states: &mut CpuStates,
        sh: &mut dyn Shared,
        now: u64,
        out: &mut dyn Write,
    ) -> bool {
        let mut raise = false;
        if now.saturating_sub(self.last) >= self.freq.saturating_mul(IDLE_MS) / 1000 {
            self.resync();
        }
        if !bytes.is_empty() {
            self.last = now;
        }
        for &b in bytes {
            match b {
                b'\n' => {
                    let len = core::mem::take(&mut self.len);
                    let line = self.line;
                    match Tag::split(&line[..len]) {
                        _ if core::mem::take(&mut self.overlong) => {
                            let _ = writeln!(out, "error: line longer than {LINE_MAX} bytes");
                        }
                        Ok((tag, cmd)) => {
                            let out = &mut Tagged::new(out, tag);
                            raise |= self.command(cmd, tag, states, sh, now, out);
                        }
                        Err(()) => {
                            let _ = writeln!(
                                out,
                                "error: a request id is @ and 1-{ID_MAX} of A-Za-z0-9._- then a space"
                            );
                        }
                    }
                }
                RESYNC => self.resync(),
                b'\r' => {}
                _ if self.len < LINE_MAX => {
                    self.line[self.len] = b;
                    self.len += 1;
                }
                _ => self.overlong = true,
            }
        }
        raise
    }

    /// Drops a partial line.
    fn resync(&mut self) {
        self.len = 0;
        self.overlong = false;
    }

    fn command(
        &mut self,
        line: &[u8],
        tag: Tag,
        states: &mut CpuStates,
        sh: &mut dyn Shared,
        now: u64,
        out: &mut dyn Write,
    ) -> bool {
        if let Some(&b) = line.iter().find(|&&b| !(b == b' ' || b.is_ascii_graphic())) {
            let _ = writeln!(out, "error: byte {b:#04x} is not printable ASCII");
            return false;
        }
        // Printable ASCII only from here, so the text is valid UTF-8.
        let text = core::str::from_utf8(line).unwrap_or("").trim_ascii();
        let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
        let rest = rest.trim_ascii();
        let kind = match word {
            // A blank line is no command; one with an id is answered so
            // that its client is not left waiting.
            "" if tag.len == 0 => return false,
            "" => {
                let _ = writeln!(out, "error: no command after the request id");
                return false;
            }
            "status" | "help" if !rest.is_empty() => {
                let _ = writeln!(out, "error: {word} takes no argument");
                return false;
            }
            "status" => {
                let _ = writeln!(out, "ok {}", Status(states, self.change.as_ref()));
                return false;
            }
            "help" => {
                let _ = writeln!(
                    out,
                    "ok commands: enable <cpu-list>, disable <cpu-list>, status, help"
                );
                return false;
            }
            "enable" => Kind::Enable,
            "disable" => Kind::Disable,
            _ => {
                let _ = writeln!(
                    out,
                    "error: unknown command '{word}' (commands: enable, disable, status, help)"
                );
                return false;
            }
        };
        if rest.is_empty() {
            let _ = writeln!(out, "error: {word} needs a CPU list, such as '{word} 2-3'");
            return false;
        }
        let cpus = match parse_list(rest.as_bytes(), states.len()) {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                return false;
            }
        };
        if kind == Kind::Disable && cpus.contains(BOOT_CPU) {
            let _ = writeln!(
                out,
                "error: cpu {BOOT_CPU} is the boot vCPU and cannot be disabled"
            );
            return false;
        }
        // Only what changes: enabling an enabled vCPU is a no-op.
        let mut todo = CpuSet::none(states.len());
        for i in 0..states.len() {
            todo.set(
                i,
                cpus.contains(i) && states.enabled(i) != (kind == Kind::Enable),
            );
        }
        if todo.count() == 0 {
            let _ = writeln!(out, "ok {}", Status(states, self.change.as_ref()));
            return false;
        }
        if let Some(c) = &self.change {
            let _ = writeln!(
                out,
                "error: busy: {} {} is waiting for Linux; try again when it is done",
                c.kind.word(),
                c.cpus
            );
            return false;
        }
        for i in (0..states.len()).filter(|&i| todo.contains(i)) {
            // A new change of the vCPU supersedes one that timed out.
            if let Some(late) = &mut self.late {
                late.set(i, false);
            }
            if kind == Kind::Enable {
                states.set_enabled(i, true);
                reset_slot(sh, i, true, DEVICE_CHECK);
            } else {
                reset_slot(sh, i, true, EJECT_REQUEST);
            }
        }
        self.change = Some(Change {
            kind,
            tag,
            cpus: todo.clone(),
            refused: CpuSet::none(todo.possible()),
            ejected_at: alloc::vec![None; todo.possible()],
            waiting: todo,
            deadline: now.saturating_add(self.freq.saturating_mul(self.timeout_s)),
        });
        let _ = writeln!(out, "ok {}", Status(states, self.change.as_ref()));
        true
    }

    /// Checks what Linux has reported for the change in flight and ends it
    /// when every vCPU has an answer or the timeout has passed.
    pub fn poll(
        &mut self,
        states: &mut CpuStates,
        sh: &mut dyn Shared,
        now: u64,
        out: &mut dyn Write,
    ) {
        // Linux reports the end of a hot-remove with `_OST` after `_EJ0`
        // (drivers/acpi/scan.c acpi_device_hotplug); the vCPU is disabled
        // at that report, or this long after `_EJ0` for an OS that sends
        // none. Declaring it done at `_EJ0` would let the next `enable`
        // reach Linux while it still holds the old device.
        let grace = self.freq.saturating_mul(2);
        self.late_ejects(states, sh, out);
        let Some(c) = &mut self.change else { return };
        let out = &mut Tagged::new(out, c.tag);
        let word = c.kind.word();
        for i in 0..states.len() {
            if !c.waiting.contains(i) {
                continue;
            }
            let answer = ost(sh, i).filter(|&(_, st)| st != OST_IN_PROGRESS);
            let off = states.power(i) == Some(Power::Off);
            let ejected = sh.get(i * SLOT + EJ) != 0;
            match (c.kind, answer) {
                (kind, Some((_, st))) if st != 0 => {
                    let _ = writeln!(
                        out,
                        "error: {word} {i}: Linux refused (_OST status {st:#x})"
                    );
                    if kind == Kind::Enable && off {
                        states.set_enabled(i, false);
                    }
                    c.waiting.set(i, false);
                    c.refused.set(i, true);
                }
                (Kind::Enable, Some(_)) => c.waiting.set(i, false),
                (Kind::Disable, a) if ejected && off => {
                    // Off and ejected: disabled now; done at Linux's report.
                    states.set_enabled(i, false);
                    let since = *c.ejected_at[i].get_or_insert(now);
                    if a.is_some() || now.saturating_sub(since) >= grace {
                        c.waiting.set(i, false);
                    }
                }
                (Kind::Disable, _) if ejected && !off => {
                    // `_EJ0` of a running vCPU: not from Linux's hotplug
                    // path, which offlines first. Ignored and undone.
                    sh.set(i * SLOT + EJ, 0);
                    sh.set(i * SLOT + STA, 1);
                }
                _ => {}
            }
            // The guest's copy follows the policy again, except while
            // Linux ejects the vCPU: its `_EJ0` clears STA and reads it back,
            // and a rewrite between the two would show the vCPU still
            // enabled ("Eject incomplete").
            if c.kind == Kind::Enable || !c.waiting.contains(i) {
                sh.set(i * SLOT + STA, states.enabled(i) as u8);
            }
        }
        if c.waiting.count() == 0 {
            let mut done = c.cpus.clone();
            for i in 0..states.len() {
                done.set(i, done.contains(i) && !c.refused.contains(i));
            }
            if done.count() > 0 {
                let _ = writeln!(out, "event: {word} {done} done");
            }
        } else if now >= c.deadline {
            if c.kind == Kind::Disable {
                let late = self.late.get_or_insert_with(|| CpuSet::none(states.len()));
                for i in (0..states.len()).filter(|&i| c.waiting.contains(i)) {
                    late.set(i, true);
                }
            }
            for i in (0..states.len()).filter(|&i| c.waiting.contains(i)) {
                if c.kind == Kind::Enable && states.power(i) == Some(Power::Off) {
                    states.set_enabled(i, false);
                }
                sh.set(i * SLOT + STA, states.enabled(i) as u8);
            }
            let _ = writeln!(
                out,
                "error: {word} {}: no answer from Linux within {} s; {} stays {}",
                c.waiting,
                self.timeout_s,
                c.waiting,
                if c.kind == Kind::Enable {
                    "disabled"
                } else {
                    "enabled"
                }
            );
        } else {
            return;
        }
        self.change = None;
    }
}

impl Controller {
    /// A disable that timed out and that Linux finished afterwards (it
    /// offlined the vCPU and ran `_EJ0` late): the vCPU is disabled then,
    /// so `status` says what Linux has, and the host hears of it. Only
    /// those vCPUs: a guest cannot drop a vCPU of its own accord this way.
    fn late_ejects(&mut self, states: &mut CpuStates, sh: &mut dyn Shared, out: &mut dyn Write) {
        let Some(late) = &mut self.late else { return };
        for i in 0..states.len() {
            let off = states.power(i) == Some(Power::Off);
            if late.contains(i) && off && sh.get(i * SLOT + EJ) != 0 {
                late.set(i, false);
                states.set_enabled(i, false);
                sh.set(i * SLOT + STA, 0);
                let _ = writeln!(out, "event: disable {i} done late, after its error line");
            }
        }
    }

    /// What a reset must keep (see [`record`]): the policy as it stands
    /// if the change in flight never ends, and that change; `crc` ties it
    /// to the possible vCPUs ([`record::possible_crc`]).
    pub fn record(&self, states: &CpuStates, crc: u32) -> Option<record::Record> {
        let c = self.change.as_ref();
        let enabled = |i| match c {
            Some(c) if c.waiting.contains(i) => c.kind == Kind::Disable,
            _ => states.enabled(i),
        };
        let pending = c.map(|c| (c.kind, c.tag, &c.waiting));
        record::Record::new(states.len(), enabled, pending, crc)
    }
}

/// The lines a boot with the channel starts with: the end of a change a
/// reset interrupted (to its request id, for the client still waiting),
/// then `event: boot ...` with the policy and where it came from: `saved`
/// (the record `found`, the last boot's runtime policy), else what
/// [`record::Record::check`] says (`enabled-cpus`, and why).
pub fn announce(states: &CpuStates, found: Result<&record::Record, &str>, out: &mut dyn Write) {
    let n = states.len();
    if let Some((kind, tag, waiting)) = found.ok().and_then(|r| r.pending(n)) {
        let _ = writeln!(
            out,
            "{tag}error: {} {waiting}: interrupted by a reset; {waiting} stays {}",
            kind.word(),
            if kind == Kind::Enable {
                "disabled"
            } else {
                "enabled"
            }
        );
    }
    let _ = writeln!(
        out,
        "event: boot {} policy={}",
        Status(states, None),
        found.map_or_else(|why| why, |_| "saved")
    );
}

/// `possible=.. enabled=.. online=..` and the change in flight.
struct Status<'a>(&'a CpuStates, Option<&'a Change>);

impl fmt::Display for Status<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let n = s.len();
        let (mut en, mut on) = (CpuSet::none(n), CpuSet::none(n));
        for i in 0..n {
            en.set(i, s.enabled(i));
            on.set(i, matches!(s.power(i), Some(Power::On | Power::Stopping)));
        }
        write!(f, "possible=0-{} enabled={en} online={on}", n - 1)?;
        if let Some(c) = self.1 {
            write!(f, " pending={}:{}", c.kind.word(), c.waiting)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
