//! cloud-hypervisor's arm64 ACPI tables as the firmware adopts them:
//! `acpi::adopt`'s walk over CH's window at 0x4020_0000 (the RSDP first),
//! the arm checks against CH's captured DT, and the fix (the SSDT and a
//! new XSDT), whose result must walk and check again. Input: the window's
//! bytes.
#![no_main]

use hotstub::acpi::adopt::{self, Slice};
use hotstub::acpi::arm::ch::{self, CH_RSDP};
use hotstub::acpi::{byte_sum, TableArea};
use hotstub::platform::dt;
use libfuzzer_sys::fuzz_target;

/// CH's DT of the captured run (`--cpus boot=2,max=4`).
const DTB: &[u8] =
    include_bytes!("../../tests/fixtures/cloud-hypervisor/aarch64/fdt-boot2max4.dtb");
/// Where the fix's area goes: the firmware's, right below CH's window.
const AREA: u64 = 0x4010_0000;

fuzz_target!(|data: &[u8]| {
    let board = dt::parse(DTB).expect("CH's captured DT parses");
    let win = Slice {
        base: CH_RSDP,
        bytes: data,
    };
    let Ok(a) = adopt::adopt(&win, CH_RSDP) else {
        return;
    };
    let Ok(c) = ch::check(&a, &board) else {
        return;
    };
    // The span holds every adopted table, inside the window.
    assert!(c.span.0 >= CH_RSDP && c.span.1 <= CH_RSDP + data.len() as u64);
    for t in &a.tables {
        assert!(t.addr >= c.span.0 && t.addr + t.bytes.len() as u64 <= c.span.1);
    }
    assert_eq!(c.enabled_uids.iter().filter(|&&e| e).count(), board.cpus.len());
    // The fix's tables and CH's, in one memory, walk and check again.
    let mut mem = vec![0u8; (CH_RSDP - AREA) as usize];
    let mut area = TableArea::new(&mut mem, AREA);
    let Ok((rsdp, _)) = c.fix(CH_RSDP, &mut area) else {
        return;
    };
    mem.extend_from_slice(data);
    let all = Slice {
        base: AREA,
        bytes: &mem,
    };
    let again = adopt::adopt(&all, rsdp).expect("the fixed tables walk");
    assert!(again.tables.iter().all(|t| byte_sum(&t.bytes) == 0));
    ch::check(&again, &board).expect("the fixed tables pass the arm checks");
});
