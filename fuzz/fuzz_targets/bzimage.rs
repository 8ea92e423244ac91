//! The Linux x86 bzImage setup header (`boot::bzimage::Kernel::parse`),
//! placement and the zero page built from it. Input: le64 floor, le64
//! kernel length, then the setup part (the file's first
//! (setup_sects + 1) * 512 bytes).
#![no_main]

use hotstub::boot::bzimage::{BootParams, Kernel, ZERO_PAGE_LEN};
use hotstub::platform::memmap::{Kind, MemoryMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let floor = u64::from_le_bytes(data[0..8].try_into().unwrap());
    let kernel_len = u64::from_le_bytes(data[8..16].try_into().unwrap());
    let setup = &data[16..];
    let Ok(mut k) = Kernel::parse(setup) else {
        return;
    };
    assert!(k.align.is_power_of_two());
    assert_eq!(k.load_addr % k.align, 0);
    assert!(k.footprint(kernel_len) >= kernel_len);
    if k.place_above(floor, kernel_len).is_ok() {
        assert!(k.load_addr >= floor && k.load_addr % k.align == 0);
        assert!(k.load_addr + k.footprint(kernel_len) <= 1 << 32);
    }
    let mut map = MemoryMap::new();
    map.set(0, 0x9_fc00, Kind::Ram);
    map.set(0x10_0000, 0x7ff0_0000, Kind::Ram);
    let p = BootParams {
        cmdline_addr: 0x2_0000,
        initrd_addr: floor,
        initrd_size: kernel_len,
        rsdp_addr: 0xe_0000,
    };
    let z = k.zero_page(setup, &p, &map);
    assert_eq!(z.len(), ZERO_PAGE_LEN);
    // The header signature is copied, and the loader type is ours.
    assert_eq!(&z[0x202..0x206], b"HdrS");
    assert_eq!(z[0x210], 0xff);
});
