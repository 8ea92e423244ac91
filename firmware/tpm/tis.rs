//! The TPM's FIFO (TIS) interface at locality 0 (TCG PC Client Platform
//! TPM Profile (PTP) 2.0, 6.3 and 6.5.2): request the locality, write the
//! command into the data FIFO in bursts, start it, wait for the response
//! and read it back. Every wait is bounded by the PTP's timeouts, so a
//! TPM that stops answering costs a few seconds and an error, never a
//! hang. Register access goes through [`Regs`], which the binary
//! implements over MMIO and the tests over a model.

use super::cmd::{self, HEADER, MAX_RESPONSE};
use alloc::vec::Vec;

/// Locality 0's registers (PTP 6.5.2.1, table 19).
const ACCESS: usize = 0x00;
const STS: usize = 0x18;
const DATA_FIFO: usize = 0x24;

/// TPM_ACCESS bits (PTP 6.5.2.5).
const ACCESS_VALID: u8 = 0x80;
const ACCESS_ACTIVE: u8 = 0x20;
const ACCESS_REQUEST_USE: u8 = 0x02;
/// TPM_STS bits (PTP 6.5.2.7); the burst count is bits 8-23.
const STS_VALID: u32 = 0x80;
const STS_COMMAND_READY: u32 = 0x40;
const STS_GO: u32 = 0x20;
const STS_DATA_AVAIL: u32 = 0x10;
const STS_EXPECT: u32 = 0x08;

/// PTP 6.5.1.3 table 17: TIMEOUT_A (locality, status) 750 ms, TIMEOUT_B
/// (command ready) 2 s. A command's duration has no fixed bound in the
/// PTP; 5 s is above Linux's longest for the commands used here
/// (drivers/char/tpm TPM2_DURATION_LONG, 2 s) with room for a loaded host.
const TIMEOUT_A_US: u64 = 750_000;
const TIMEOUT_B_US: u64 = 2_000_000;
const COMMAND_US: u64 = 5_000_000;

/// One locality's register window and a clock.
pub trait Regs {
    fn read8(&mut self, off: usize) -> u8;
    fn write8(&mut self, off: usize, v: u8);
    fn read32(&mut self, off: usize) -> u32;
    fn write32(&mut self, off: usize, v: u32);
    /// Microseconds on a clock that only moves forward.
    fn now_us(&mut self) -> u64;
}

/// Why a command did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No answer within the PTP timeout for this step.
    Timeout(&'static str),
    /// The TPM's status contradicts the protocol (all ones: no device).
    Protocol(&'static str),
    Response(cmd::Error),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Error::Timeout(what) => write!(f, "no answer ({what})"),
            Error::Protocol(what) => f.write_str(what),
            Error::Response(e) => write!(f, "{e}"),
        }
    }
}

/// A TPM whose locality 0 this firmware holds.
pub struct Tis<R: Regs> {
    regs: R,
}

impl<R: Regs> Tis<R> {
    /// Requests locality 0 and waits until the TPM grants it.
    pub fn open(mut regs: R) -> Result<Tis<R>, Error> {
        let a = regs.read8(ACCESS);
        if a == 0xff {
            return Err(Error::Protocol("no TPM answers at its TIS address"));
        }
        regs.write8(ACCESS, ACCESS_REQUEST_USE);
        let mut t = Tis { regs };
        t.wait(TIMEOUT_A_US, "locality 0", |r| {
            let a = r.read8(ACCESS);
            a & (ACCESS_VALID | ACCESS_ACTIVE) == ACCESS_VALID | ACCESS_ACTIVE
        })?;
        Ok(t)
    }

    #[cfg(test)]
    pub fn regs(&self) -> &R {
        &self.regs
    }

    /// Gives locality 0 back for the OS's driver.
    pub fn close(mut self) {
        self.regs.write8(ACCESS, ACCESS_ACTIVE);
    }

    /// Sends `command` and returns the whole response.
    pub fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.regs.write32(STS, STS_COMMAND_READY);
        self.wait(TIMEOUT_B_US, "command ready", |r| {
            r.read32(STS) & STS_COMMAND_READY != 0
        })?;
        let mut sent = 0;
        while sent < command.len() {
            let burst = self.burst()?;
            let n = burst.min(command.len() - sent);
            for &b in &command[sent..sent + n] {
                self.regs.write8(DATA_FIFO, b);
            }
            sent += n;
            let sts = self.valid_status()?;
            // Expect stays set until the last byte (PTP 6.5.2.7).
            if (sts & STS_EXPECT != 0) != (sent < command.len()) {
                self.regs.write32(STS, STS_COMMAND_READY);
                return Err(Error::Protocol("the TPM disagrees on the command's length"));
            }
        }
        self.regs.write32(STS, STS_GO);
        self.wait(COMMAND_US, "command", |r| {
            r.read32(STS) & (STS_VALID | STS_DATA_AVAIL) == STS_VALID | STS_DATA_AVAIL
        })?;
        let mut header = [0u8; HEADER];
        self.read_fifo(&mut header)?;
        let size = cmd::response_size(&header).map_err(Error::Response)?;
        let mut r = Vec::with_capacity(size);
        r.extend_from_slice(&header);
        r.resize(size, 0);
        self.read_fifo(&mut r[HEADER..])?;
        // Back to idle; a response longer than announced is dropped with it.
        self.regs.write32(STS, STS_COMMAND_READY);
        debug_assert!(r.len() <= MAX_RESPONSE);
        Ok(r)
    }

    fn read_fifo(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        let mut got = 0;
        while got < buf.len() {
            if self.valid_status()? & STS_DATA_AVAIL == 0 {
                return Err(Error::Protocol("the TPM's response ends early"));
            }
            let burst = self.burst()?;
            let n = burst.min(buf.len() - got);
            for b in &mut buf[got..got + n] {
                *b = self.regs.read8(DATA_FIFO);
            }
            got += n;
        }
        Ok(())
    }

    /// The burst count once it is non-zero.
    fn burst(&mut self) -> Result<usize, Error> {
        let mut burst = 0;
        self.wait(TIMEOUT_A_US, "burst count", |r| {
            let sts = r.read32(STS);
            burst = ((sts >> 8) & 0xffff) as usize;
            sts != u32::MAX && burst != 0
        })?;
        Ok(burst)
    }

    fn valid_status(&mut self) -> Result<u32, Error> {
        let mut sts = 0;
        self.wait(TIMEOUT_A_US, "status", |r| {
            sts = r.read32(STS);
            sts & STS_VALID != 0
        })?;
        Ok(sts)
    }

    /// Polls `done` until it holds or `us` pass.
    fn wait(
        &mut self,
        us: u64,
        what: &'static str,
        mut done: impl FnMut(&mut R) -> bool,
    ) -> Result<(), Error> {
        let start = self.regs.now_us();
        loop {
            if done(&mut self.regs) {
                return Ok(());
            }
            if self.regs.now_us().saturating_sub(start) > us {
                return Err(Error::Timeout(what));
            }
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A TIS FIFO as QEMU's tpm_tis models it, answering each command from
    /// `answer`; `hang` makes it never report a response; each register
    /// read advances the clock by 10 us.
    pub struct Model {
        pub answer: fn(&[u8]) -> Vec<u8>,
        pub hang: bool,
        pub absent: bool,
        pub active: bool,
        pub cmd: Vec<u8>,
        pub out: VecDeque<u8>,
        pub commands: Vec<Vec<u8>>,
        pub now: u64,
    }

    impl Model {
        pub fn new(answer: fn(&[u8]) -> Vec<u8>) -> Model {
            Model {
                answer,
                hang: false,
                absent: false,
                active: false,
                cmd: Vec::new(),
                out: VecDeque::new(),
                commands: Vec::new(),
                now: 0,
            }
        }
        fn expected(&self) -> usize {
            self.cmd.get(2..6).map_or(usize::MAX, |s| {
                u32::from_be_bytes(s.try_into().unwrap()) as usize
            })
        }
    }

    impl Regs for Model {
        fn read8(&mut self, off: usize) -> u8 {
            self.now += 10;
            match off {
                _ if self.absent => 0xff,
                ACCESS => ACCESS_VALID | if self.active { ACCESS_ACTIVE } else { 0 },
                DATA_FIFO => self.out.pop_front().unwrap_or(0xff),
                _ => 0,
            }
        }
        fn write8(&mut self, off: usize, v: u8) {
            match off {
                ACCESS if v == ACCESS_REQUEST_USE => self.active = true,
                ACCESS if v == ACCESS_ACTIVE => self.active = false,
                DATA_FIFO => self.cmd.push(v),
                _ => {}
            }
        }
        fn read32(&mut self, off: usize) -> u32 {
            self.now += 10;
            if self.absent {
                return u32::MAX;
            }
            assert_eq!(off, STS);
            let burst = if self.out.is_empty() {
                64
            } else {
                self.out.len().min(64) as u32
            };
            let mut s = STS_VALID | STS_COMMAND_READY | (burst << 8);
            if self.cmd.len() < self.expected() && self.out.is_empty() {
                s |= STS_EXPECT;
            }
            if !self.out.is_empty() {
                s |= STS_DATA_AVAIL;
            }
            s
        }
        fn write32(&mut self, off: usize, v: u32) {
            assert_eq!(off, STS);
            if v == STS_GO && !self.hang {
                let c = core::mem::take(&mut self.cmd);
                self.out = (self.answer)(&c).into();
                self.commands.push(c);
            } else if v == STS_COMMAND_READY {
                self.cmd.clear();
                self.out.clear();
            }
        }
        fn now_us(&mut self) -> u64 {
            self.now
        }
    }

    fn ok(_: &[u8]) -> Vec<u8> {
        let mut r = std::vec![0x80, 1, 0, 0, 0, 0x8c, 0, 0, 0, 0];
        r.resize(0x8c, 0x5a);
        r
    }

    #[test]
    fn a_command_goes_out_in_bursts_and_the_response_comes_back() {
        let mut t = Tis::open(Model::new(ok)).unwrap();
        assert!(t.regs.active);
        let c: Vec<u8> = cmd::pcr_extend(0, &[(crate::tpm::Alg::Sha512, &[7; 64])]);
        assert!(c.len() > 64, "more than one burst");
        let r = t.transact(&c).unwrap();
        assert_eq!(r.len(), 0x8c);
        assert_eq!(t.regs.commands, [c]);
        t.close();
    }

    #[test]
    fn absent_and_silent_tpms_time_out() {
        let mut m = Model::new(ok);
        m.absent = true;
        assert!(matches!(Tis::open(m), Err(Error::Protocol(_))));
        let mut m = Model::new(ok);
        m.hang = true;
        let mut t = Tis::open(m).unwrap();
        assert_eq!(t.transact(&cmd::startup()), Err(Error::Timeout("command")));
        // Bounded: the command timeout and not much more.
        assert!(t.regs.now < COMMAND_US + 100_000);
    }

    #[test]
    fn a_response_that_claims_too_much_is_refused() {
        fn huge(_: &[u8]) -> Vec<u8> {
            std::vec![0x80, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]
        }
        let mut t = Tis::open(Model::new(huge)).unwrap();
        assert!(matches!(
            t.transact(&cmd::startup()),
            Err(Error::Response(cmd::Error::Truncated))
        ));
        fn short(_: &[u8]) -> Vec<u8> {
            std::vec![0x80, 1, 0, 0, 0, 20, 0, 0, 0, 0]
        }
        let mut t = Tis::open(Model::new(short)).unwrap();
        assert!(matches!(
            t.transact(&cmd::startup()),
            Err(Error::Protocol(_))
        ));
    }
}
