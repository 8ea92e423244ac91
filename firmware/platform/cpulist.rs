//! The arm64 vCPU policy: which possible vCPUs the VMM allows to come up,
//! given as a Linux-style CPU list (`0-1,3`) in the fw_cfg file
//! `opt/org.hotstub/enabled-cpus`.
//!
//! CPU numbers are logical: position in the DT `/cpus` order, which is also
//! the order of [`crate::platform::cpus::CpuModel`].
//!
//! The grammar is the plain subset of Linux's list format
//! (`Documentation/admin-guide/cputopology.rst`, `bitmap_parselist`):
//!
//! ```text
//! list  = item *( "," item )
//! item  = num [ "-" num ]
//! num   = "0" / nonzero-digit *digit
//! ```
//!
//! Deliberate differences from Linux, because this is policy a VMM writes
//! and a typo must not quietly change which vCPUs a guest may use:
//! - Leading zeros (`01`) are rejected: some tools read them as octal.
//! - Overlaps and duplicates (`0-2,1`) are rejected rather than merged.
//! - Linux's stride syntax (`0-7:2/4`) and `all`/`N` are not supported.
//! - Whitespace (and NUL bytes: `-fw_cfg ...,string=` may or may not store
//!   one, a file may end in a newline) is accepted only around the whole
//!   list, not inside it.
//! - The boot CPU 0 must be in the list: the firmware and the kernel run on
//!   it, so a policy without it is contradictory.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::platform::cpus::CpuModel;

/// The fw_cfg file holding the policy (`-fw_cfg name=...,string=0-1`),
/// named with the firmware's other fw_cfg files.
pub const FW_CFG_FILE: &str = crate::platform::fw_cfg::file::ENABLED_CPUS;

/// The logical number of the boot CPU (first in the DT `/cpus` order).
pub const BOOT_CPU: usize = 0;

/// Why a CPU list was rejected. Byte offsets count from the start of the
/// input as given (before trimming), so they point into what the user wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuListError {
    /// Nothing but whitespace or NUL bytes.
    Empty,
    /// A number was expected at this byte.
    ExpectedNumber { at: usize },
    /// A number with a leading zero (`01`) at this byte.
    LeadingZero { at: usize },
    /// A number too large to represent at this byte.
    Overflow { at: usize },
    /// Something other than `,` or the end of the list after an item.
    Unexpected { at: usize, byte: u8 },
    /// `first-last` with `last < first`.
    Reversed { first: usize, last: usize },
    /// This CPU is named more than once.
    Duplicate { cpu: usize },
    /// This CPU number is not below the number of possible CPUs.
    OutOfRange { cpu: usize, possible: usize },
    /// The list leaves out the boot CPU.
    NoBootCpu,
}

impl fmt::Display for CpuListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CpuListError::*;
        match *self {
            Empty => write!(f, "empty CPU list"),
            ExpectedNumber { at } => write!(f, "CPU list: expected a CPU number at byte {at}"),
            LeadingZero { at } => write!(f, "CPU list: number with a leading zero at byte {at}"),
            Overflow { at } => write!(f, "CPU list: number too large at byte {at}"),
            Unexpected { at, byte } => write!(
                f,
                "CPU list: unexpected {} at byte {at} (expected ',' or the end)",
                Printable(byte)
            ),
            Reversed { first, last } => write!(f, "CPU list: reversed range {first}-{last}"),
            Duplicate { cpu } => write!(f, "CPU list: CPU {cpu} is listed more than once"),
            OutOfRange { cpu, possible } => write!(
                f,
                "CPU list: CPU {cpu} does not exist (the machine has {possible} possible CPUs)"
            ),
            NoBootCpu => write!(f, "CPU list: the boot CPU {BOOT_CPU} must be enabled"),
        }
    }
}

/// A byte shown as a quoted character when printable, else in hex, so the
/// one-line error never carries control characters to the console.
struct Printable(u8);

impl fmt::Display for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0 as char)
        } else {
            write!(f, "byte {:#04x}", self.0)
        }
    }
}

/// The set of enabled logical CPUs, sized to the number of possible CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSet {
    member: Vec<bool>,
}

impl CpuSet {
    /// Every one of `possible` CPUs: the policy when there is no list.
    pub fn all(possible: usize) -> Self {
        CpuSet {
            member: vec![true; possible],
        }
    }

    /// Number of possible CPUs the set was made for.
    pub fn possible(&self) -> usize {
        self.member.len()
    }

    pub fn contains(&self, cpu: usize) -> bool {
        self.member.get(cpu).copied().unwrap_or(false)
    }

    /// Number of CPUs in the set.
    pub fn count(&self) -> usize {
        self.member.iter().filter(|&&m| m).count()
    }

    /// Membership by logical CPU number.
    pub fn as_slice(&self) -> &[bool] {
        &self.member
    }

    /// The empty set of `possible` CPUs.
    pub fn none(possible: usize) -> Self {
        CpuSet {
            member: vec![false; possible],
        }
    }

    /// Adds or removes `cpu` (ignored when out of range).
    pub fn set(&mut self, cpu: usize, on: bool) {
        if let Some(m) = self.member.get_mut(cpu) {
            *m = on;
        }
    }

    /// Marks the vCPUs of `model` enabled or not by their position in it.
    /// The model must hold the CPUs in DT `/cpus` order and have
    /// [`Self::possible`] entries (the set was parsed against its length);
    /// returns false, changing nothing, if the lengths differ.
    pub fn apply(&self, model: &mut CpuModel) -> bool {
        if model.len() != self.member.len() {
            return false;
        }
        // By position, not by UID (a search per vCPU, quadratic in their
        // number): the same vCPUs, as the tables need unique UIDs
        // (`cpus::validate`).
        model.set_enabled_in_order(&self.member);
        true
    }
}

/// The set in the list format (`0-2,5`, as Linux's sysfs CPU masks print),
/// `none` when it is empty.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.member;
        let mut sep = "";
        let mut i = 0;
        while i < m.len() {
            // The run of members from `first`, if any, and the non-member
            // after it.
            let first = i;
            while i < m.len() && m[i] {
                i += 1;
            }
            if i > first {
                write!(f, "{sep}{first}")?;
                if i - 1 > first {
                    write!(f, "-{}", i - 1)?;
                }
                sep = ",";
            }
            i += 1;
        }
        if sep.is_empty() {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Applies the VMM's policy to `model` (CPUs in DT `/cpus` order): the
/// contents of [`FW_CFG_FILE`], or `None` when the file is absent, which
/// enables every vCPU. A malformed list is an error and leaves `model`
/// unchanged; there is no silent fallback to the default.
pub fn apply_policy(model: &mut CpuModel, file: Option<&[u8]>) -> Result<(), CpuListError> {
    let set = match file {
        Some(text) => parse(text, model.len())?,
        None => CpuSet::all(model.len()),
    };
    // Same length by construction.
    set.apply(model);
    Ok(())
}

fn is_blank(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0
}

/// Parses a CPU list for a machine with `possible` CPUs. See the module
/// documentation for the accepted syntax and the reasons for each error.
pub fn parse(text: &[u8], possible: usize) -> Result<CpuSet, CpuListError> {
    let set = parse_list(text, possible)?;
    if !set.contains(BOOT_CPU) {
        return Err(CpuListError::NoBootCpu);
    }
    Ok(set)
}

/// [`parse`] without the boot CPU rule: a list of CPUs to act on (the
/// runtime hotplug commands), not a policy.
pub fn parse_list(text: &[u8], possible: usize) -> Result<CpuSet, CpuListError> {
    let start = text
        .iter()
        .position(|&b| !is_blank(b))
        .ok_or(CpuListError::Empty)?;
    // `start` exists, so some byte is not blank.
    let end = text.iter().rposition(|&b| !is_blank(b)).unwrap_or(start) + 1;
    let mut member = vec![false; possible];
    let mut pos = start;
    loop {
        let (first, next) = number(text, pos, end)?;
        let (last, next) = match text.get(next) {
            Some(b'-') if next < end => {
                let (last, after) = number(text, next + 1, end)?;
                if last < first {
                    return Err(CpuListError::Reversed { first, last });
                }
                (last, after)
            }
            _ => (first, next),
        };
        if last >= possible {
            let cpu = if first >= possible { first } else { last };
            return Err(CpuListError::OutOfRange { cpu, possible });
        }
        for (cpu, m) in member.iter_mut().enumerate().take(last + 1).skip(first) {
            if *m {
                return Err(CpuListError::Duplicate { cpu });
            }
            *m = true;
        }
        if next == end {
            break;
        }
        if text[next] != b',' {
            return Err(CpuListError::Unexpected {
                at: next,
                byte: text[next],
            });
        }
        pos = next + 1;
    }
    Ok(CpuSet { member })
}

/// One decimal number starting at `pos` (before `end`); returns it and the
/// offset after its last digit.
fn number(text: &[u8], pos: usize, end: usize) -> Result<(usize, usize), CpuListError> {
    let digits = text[pos..end]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return Err(CpuListError::ExpectedNumber { at: pos });
    }
    if digits > 1 && text[pos] == b'0' {
        return Err(CpuListError::LeadingZero { at: pos });
    }
    let value = text[pos..pos + digits].iter().try_fold(0usize, |v, &d| {
        v.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    });
    let value = value.ok_or(CpuListError::Overflow { at: pos })?;
    Ok((value, pos + digits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::cpus::Vcpu;
    use alloc::string::ToString;

    fn set(text: &str, possible: usize) -> Result<Vec<bool>, CpuListError> {
        parse(text.as_bytes(), possible).map(|s| s.as_slice().to_vec())
    }

    #[test]
    fn valid_lists() {
        assert_eq!(set("0-1", 4), Ok(vec![true, true, false, false]));
        assert_eq!(set("0-1,3", 4), Ok(vec![true, true, false, true]));
        assert_eq!(set("0", 1), Ok(vec![true]));
        assert_eq!(set("0", 3), Ok(vec![true, false, false]));
        assert_eq!(set("0-3", 4), Ok(vec![true; 4]));
        assert_eq!(set("3,0,1", 4), Ok(vec![true, true, false, true]));
        assert_eq!(set("0,2-2", 3), Ok(vec![true, false, true]));
        let big = set("0,10-11,255", 256).unwrap();
        assert_eq!(big.iter().filter(|&&b| b).count(), 4);
        assert!(big[10] && big[11] && big[255] && !big[12]);
    }

    #[test]
    fn blank_ends_are_accepted() {
        let want = Ok(vec![true, true, false, false]);
        assert_eq!(set("0-1\n", 4), want);
        assert_eq!(set("0-1\0", 4), want);
        assert_eq!(set("0-1\n\0", 4), want);
        assert_eq!(set("  0-1 \t\r\n", 4), want);
        assert_eq!(set("\n0-1", 4), want);
    }

    #[test]
    fn malformed_lists() {
        use CpuListError::*;
        assert_eq!(set("", 4), Err(Empty));
        assert_eq!(set(" \n\0", 4), Err(Empty));
        assert_eq!(set("a", 4), Err(ExpectedNumber { at: 0 }));
        assert_eq!(set("0,", 4), Err(ExpectedNumber { at: 2 }));
        assert_eq!(set("0,\n", 4), Err(ExpectedNumber { at: 2 }));
        assert_eq!(set(",0", 4), Err(ExpectedNumber { at: 0 }));
        assert_eq!(set("0,,1", 4), Err(ExpectedNumber { at: 2 }));
        assert_eq!(set("0-", 4), Err(ExpectedNumber { at: 2 }));
        assert_eq!(set("-1", 4), Err(ExpectedNumber { at: 0 }));
        assert_eq!(set("0--1", 4), Err(ExpectedNumber { at: 2 }));
        assert_eq!(set("0 ,1", 4), Err(Unexpected { at: 1, byte: b' ' }));
        assert_eq!(set("0, 1", 4), Err(ExpectedNumber { at: 2 }));
        assert_eq!(set("0 1", 4), Err(Unexpected { at: 1, byte: b' ' }));
        assert_eq!(set("0;1", 4), Err(Unexpected { at: 1, byte: b';' }));
        assert_eq!(set("0-1x", 4), Err(Unexpected { at: 3, byte: b'x' }));
        assert_eq!(set("0-1-2", 4), Err(Unexpected { at: 3, byte: b'-' }));
        assert_eq!(set("0\x001", 4), Err(Unexpected { at: 1, byte: 0 }));
        assert_eq!(set("0-3:2/4", 4), Err(Unexpected { at: 3, byte: b':' }));
        assert_eq!(set("all", 4), Err(ExpectedNumber { at: 0 }));
        assert_eq!(set("+1", 4), Err(ExpectedNumber { at: 0 }));
        assert_eq!(set("0x1", 4), Err(Unexpected { at: 1, byte: b'x' }));
        assert_eq!(set("0,01", 4), Err(LeadingZero { at: 2 }));
        assert_eq!(set("00", 4), Err(LeadingZero { at: 0 }));
        assert_eq!(set("0-03", 4), Err(LeadingZero { at: 2 }));
        assert_eq!(set("0,99999999999999999999999", 4), Err(Overflow { at: 2 }));
        assert_eq!(set("3-1", 4), Err(Reversed { first: 3, last: 1 }));
        assert_eq!(set("0,1,1", 4), Err(Duplicate { cpu: 1 }));
        assert_eq!(set("0-2,1", 4), Err(Duplicate { cpu: 1 }));
        assert_eq!(set("0-2,2-3", 4), Err(Duplicate { cpu: 2 }));
        assert_eq!(
            set("0-4", 4),
            Err(OutOfRange {
                cpu: 4,
                possible: 4
            })
        );
        assert_eq!(
            set("0,4", 4),
            Err(OutOfRange {
                cpu: 4,
                possible: 4
            })
        );
        assert_eq!(
            set("0,9-12", 4),
            Err(OutOfRange {
                cpu: 9,
                possible: 4
            })
        );
        assert_eq!(
            set("0", 0),
            Err(OutOfRange {
                cpu: 0,
                possible: 0
            })
        );
        assert_eq!(set("1-3", 4), Err(NoBootCpu));
        assert_eq!(set("1", 4), Err(NoBootCpu));
    }

    #[test]
    fn errors_read_as_one_line() {
        let all = [
            CpuListError::Empty,
            CpuListError::ExpectedNumber { at: 1 },
            CpuListError::LeadingZero { at: 1 },
            CpuListError::Overflow { at: 1 },
            CpuListError::Unexpected { at: 1, byte: b'\n' },
            CpuListError::Unexpected { at: 1, byte: b'x' },
            CpuListError::Reversed { first: 3, last: 1 },
            CpuListError::Duplicate { cpu: 1 },
            CpuListError::OutOfRange {
                cpu: 4,
                possible: 4,
            },
            CpuListError::NoBootCpu,
        ];
        for e in all {
            let s = e.to_string();
            assert!(!s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
        }
        assert_eq!(
            CpuListError::Unexpected { at: 3, byte: b'\n' }.to_string(),
            "CPU list: unexpected byte 0x0a at byte 3 (expected ',' or the end)"
        );
        assert_eq!(
            CpuListError::OutOfRange {
                cpu: 4,
                possible: 4
            }
            .to_string(),
            "CPU list: CPU 4 does not exist (the machine has 4 possible CPUs)"
        );
    }

    #[test]
    fn set_queries_and_apply() {
        let s = parse(b"0,2", 3).unwrap();
        assert_eq!(s.possible(), 3);
        assert_eq!(s.count(), 2);
        assert!(s.contains(0) && !s.contains(1) && s.contains(2) && !s.contains(3));
        let mut model = CpuModel::new(
            (0..3)
                .map(|i| Vcpu {
                    uid: 10 + i,
                    hw_id: u64::from(i) << 8,
                    enabled: true,
                })
                .collect(),
        );
        assert!(s.apply(&mut model));
        let enabled: Vec<bool> = model.iter().map(|c| c.enabled).collect();
        assert_eq!(enabled, vec![true, false, true]);
        assert!(!parse(b"0", 2).unwrap().apply(&mut model));
        assert_eq!(model.enabled_count(), 2);
        assert_eq!(CpuSet::all(3).count(), 3);
    }

    #[test]
    fn policy_from_fw_cfg() {
        let model = || {
            CpuModel::new(
                (0..4)
                    .map(|i| Vcpu {
                        uid: i,
                        hw_id: u64::from(i),
                        enabled: i == 0,
                    })
                    .collect(),
            )
        };
        let enabled = |m: &CpuModel| m.iter().map(|c| c.enabled).collect::<Vec<_>>();
        let mut m = model();
        apply_policy(&mut m, None).unwrap();
        assert_eq!(enabled(&m), vec![true; 4]);
        let mut m = model();
        apply_policy(&mut m, Some(b"0-1\0")).unwrap();
        assert_eq!(enabled(&m), vec![true, true, false, false]);
        let mut m = model();
        assert_eq!(
            apply_policy(&mut m, Some(b"0-4")),
            Err(CpuListError::OutOfRange {
                cpu: 4,
                possible: 4
            })
        );
        assert_eq!(enabled(&m), vec![true, false, false, false], "unchanged");
        assert_eq!(apply_policy(&mut m, Some(b"")), Err(CpuListError::Empty));
    }

    /// A small xorshift generator: the property tests need varied input,
    /// not cryptographic randomness, and must be reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Reference semantics written independently of the parser: a set over
    /// `possible` CPUs from a list of (first, last) ranges.
    fn reference(ranges: &[(usize, usize)], possible: usize) -> Option<Vec<bool>> {
        let mut m = vec![false; possible];
        for &(a, b) in ranges {
            if b < a || b >= possible {
                return None;
            }
            for x in m.iter_mut().take(b + 1).skip(a) {
                if *x {
                    return None;
                }
                *x = true;
            }
        }
        if possible == 0 || !m[0] {
            return None;
        }
        Some(m)
    }

    #[test]
    fn never_panics_on_random_bytes() {
        const ALPHABET: &[u8] = b"0123456789,- \n\0x:/0011,,--9";
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..200_000 {
            let len = (rng.next() % 24) as usize;
            let possible = (rng.next() % 12) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r.is_multiple_of(8) {
                        (r >> 8) as u8
                    } else {
                        ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                    }
                })
                .collect();
            if let Ok(s) = parse(&text, possible) {
                assert_eq!(s.possible(), possible);
                assert!(s.contains(BOOT_CPU));
            }
        }
    }

    #[test]
    fn agrees_with_reference_on_generated_lists() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let possible = 1 + (rng.next() % 10) as usize;
            let n = 1 + (rng.next() % 4) as usize;
            let ranges: Vec<(usize, usize)> = (0..n)
                .map(|_| {
                    let a = (rng.next() % 12) as usize;
                    if rng.next().is_multiple_of(2) {
                        (a, a)
                    } else {
                        (a, (rng.next() % 12) as usize)
                    }
                })
                .collect();
            let text = ranges
                .iter()
                .map(|&(a, b)| {
                    if a == b && rng.next().is_multiple_of(2) {
                        a.to_string()
                    } else {
                        alloc::format!("{a}-{b}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            let got = parse(text.as_bytes(), possible).ok();
            assert_eq!(
                got.map(|s| s.as_slice().to_vec()),
                reference(&ranges, possible),
                "{text:?} with {possible} possible"
            );
        }
    }
}
