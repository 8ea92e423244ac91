//! QEMU's `etc/e820` (`platform::memmap::MemoryMap::from_qemu_e820`) and
//! the placement queries the firmware makes on the map. Input: the raw
//! file (20-byte entries).
#![no_main]

use hotstub::platform::memmap::{Kind, MemoryMap};
use libfuzzer_sys::fuzz_target;

fn entries(data: &[u8]) -> Vec<(u64, u64, u32)> {
    data.chunks_exact(20)
        .map(|e| {
            (
                u64::from_le_bytes(e[0..8].try_into().unwrap()),
                u64::from_le_bytes(e[8..16].try_into().unwrap()),
                u32::from_le_bytes(e[16..20].try_into().unwrap()),
            )
        })
        .collect()
}

fn check_map(m: &MemoryMap) {
    let r = m.regions();
    assert!(r
        .iter()
        .all(|r| r.size > 0 && r.addr.checked_add(r.size).is_some()));
    for w in r.windows(2) {
        // Sorted, disjoint, and neighbours of one kind merged.
        assert!(w[0].end() <= w[1].addr);
        assert!(!(w[0].end() == w[1].addr && w[0].kind == w[1].kind));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut map) = MemoryMap::from_qemu_e820(data) else {
        return;
    };
    check_map(&map);
    let e = entries(data);
    let ram_in: u128 = e.iter().filter(|e| e.2 == 1).map(|e| e.1 as u128).sum();
    assert!(map.ram_total() > 0 && map.ram_total() as u128 <= ram_in);
    // RAM is RAM the VMM listed, and nothing the VMM holds back.
    for r in map.regions().iter().filter(|r| r.kind == Kind::Ram) {
        assert!(!e
            .iter()
            .any(|x| x.2 != 1 && x.1 > 0 && x.0 < r.end() && x.0 + x.1 > r.addr));
        assert!(e
            .iter()
            .any(|x| x.2 == 1 && x.0 <= r.addr && r.addr < x.0 + x.1));
    }
    // Placement: what the loaders ask for, with sizes from the input.
    let p = |i: usize| e.get(i).map_or(0x1000, |x| x.0 | 1);
    let size = p(0) % (1 << 32);
    let align = 1u64 << (p(1) % 31);
    let limit = p(2);
    let avoid = [
        (0x10_0000u64, 0x40_0000u64),
        (p(3), p(3).saturating_add(size)),
    ];
    if let Some(a) = map.find_top(size, align, limit, &avoid) {
        assert_eq!(a % align, 0);
        assert!(a.checked_add(size).is_some_and(|end| end <= limit));
        assert!(map.is_ram(a, size));
        assert!(avoid.iter().all(|&(s, end)| a + size <= s || a >= end));
    }
    let _ = map.ram_end_below_4g();
    map.reserve_ram(p(4), size, Kind::Reserved);
    check_map(&map);
});
