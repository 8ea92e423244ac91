//! The VMM's vCPU policy, a CPU list (`platform::cpulist::parse`), and
//! its one-line error text. Input: le16 number of possible CPUs (taken
//! modulo 1025), then the list as written.
#![no_main]

use hotstub::platform::cpulist::{self, CpuListError};
use hotstub::platform::cpus::CpuModel;
use libfuzzer_sys::fuzz_target;

/// The canonical spelling of a set: ranges joined by commas.
fn render(set: &[bool]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < set.len() {
        if !set[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < set.len() && set[i + 1] {
            i += 1;
        }
        out.push(if start == i {
            format!("{start}")
        } else {
            format!("{start}-{i}")
        });
        i += 1;
    }
    out.join(",")
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let possible = usize::from(u16::from_le_bytes([data[0], data[1]])) % 1025;
    let text = &data[2..];
    match cpulist::parse(text, possible) {
        Ok(set) => {
            assert_eq!(set.possible(), possible);
            assert!(set.contains(cpulist::BOOT_CPU));
            assert!(set.count() >= 1 && set.count() <= possible);
            // Only digits, '-', ',' and blanks around the list parse.
            assert!(text.iter().all(|b| b.is_ascii_digit()
                || b"-,".contains(b)
                || b.is_ascii_whitespace()
                || *b == 0));
            // The canonical spelling parses to the same set.
            let again = cpulist::parse(render(set.as_slice()).as_bytes(), possible).unwrap();
            assert_eq!(again, set);
            let mut model = CpuModel::from_mpidrs(&(0..possible as u64).collect::<Vec<_>>());
            assert!(set.apply(&mut model));
            assert_eq!(model.enabled_count(), set.count());
        }
        Err(e) => {
            match e {
                CpuListError::ExpectedNumber { at }
                | CpuListError::LeadingZero { at }
                | CpuListError::Overflow { at } => assert!(at <= text.len()),
                CpuListError::Unexpected { at, byte } => assert_eq!(text.get(at), Some(&byte)),
                CpuListError::Reversed { first, last } => assert!(last < first),
                CpuListError::OutOfRange { cpu, possible: p } => {
                    assert!(cpu >= p && p == possible)
                }
                CpuListError::Duplicate { cpu } => assert!(cpu < possible),
                CpuListError::Empty | CpuListError::NoBootCpu => {}
            }
            // The error is one printable line for the console.
            let msg = e.to_string();
            assert!(!msg.is_empty());
            assert!(msg.chars().all(|c| !c.is_control()));
        }
    }
});
