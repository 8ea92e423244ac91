//! Counting QEMU's memory hotplug slots from the register block's answers
//! (`acpi::memhp::count_slots`). Input: the status byte, then the probe
//! byte read for slot 0, 1, ... (zero past the input's end).
#![no_main]

use hotstub::acpi::memhp::{self, MAX_SLOTS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&status, answers)) = data.split_first() else {
        return;
    };
    let mut probed = 0u32;
    let r = memhp::count_slots(status, |slot| {
        assert_eq!(slot, probed, "slots are probed in order, once each");
        probed += 1;
        answers.get(slot as usize).copied().unwrap_or(0)
    });
    if status & 0xf8 != 0 {
        assert_eq!(r, Ok(0));
        assert_eq!(probed, 0);
        return;
    }
    match r {
        Ok(n) => {
            assert!(n < MAX_SLOTS);
            assert!(answers.iter().take(n as usize).all(|&b| b == 0xff));
            assert_eq!(answers.get(n as usize).copied().unwrap_or(0), 0);
        }
        Err(_) => assert!(probed >= 1 && probed <= MAX_SLOTS),
    }
    // Whatever was counted, the AML for it builds.
    if let Ok(n @ 1..) = r {
        let m = memhp::MemHotplug {
            block: memhp::Block::Io(0xa00),
            slots: n,
        };
        assert!(memhp::container(&m).is_ok());
    }
});
