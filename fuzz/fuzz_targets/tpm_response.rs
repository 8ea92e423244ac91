//! The TPM's answers (`tpm::cmd`'s decoders, and the TIS transport reading
//! them): the input is what the TPM puts in its FIFO, first for
//! TPM2_Startup, then TPM2_GetCapability(PCRS), then TPM2_PCR_Extend,
//! split at the sizes their headers announce. Whatever it says, the
//! decoders return a value or an error, and the banks they report are
//! ones the firmware can hash.
#![no_main]

use hotstub::tpm::{cmd, Alg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cmd::startup_response(data);
    if let Ok(banks) = cmd::pcrs_response(data) {
        assert!(banks.len() <= 16);
        for b in banks.into_iter().flatten() {
            assert_eq!(Alg::from_id(b.id()), Some(b));
        }
    }
    let _ = cmd::extend_response(data);
    if let Some(h) = data.get(..cmd::HEADER) {
        let h: [u8; cmd::HEADER] = h.try_into().unwrap();
        if let Ok(n) = cmd::response_size(&h) {
            assert!((cmd::HEADER..=cmd::MAX_RESPONSE).contains(&n));
        }
    }
    // Over a response's parameters for each tag, as `response` slices them.
    for tag in [0x8001, 0x8002] {
        if let Ok(p) = cmd::response(data, tag) {
            assert!(p.len() + cmd::HEADER <= data.len());
        }
    }
});
