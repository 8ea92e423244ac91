//! The PVH start info (`boot::pvh::parse`): a memory image at 0 holding
//! the start info at 0x6000, as cloud-hypervisor places it (its memory
//! map and command line anywhere in the image).
#![no_main]

use hotstub::acpi::adopt::Slice;
use hotstub::boot::pvh;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mem = Slice { base: 0, bytes: data };
    // At 0x6000 when the image is that long, else at its start.
    let at = if data.len() > 0x6000 { 0x6000 } else { 0 };
    let Ok(s) = pvh::parse(&mem, at) else {
        return;
    };
    assert!(s.version >= 1);
    assert!(s.cmdline.len() < pvh::MAX_CMDLINE);
    assert!(!s.cmdline.contains(&0));
    assert!(s.map.ram_total() > 0);
    assert!(s.map.regions().len() <= 2 * pvh::MAX_MEMMAP_ENTRIES + 1);
});
