//! The three TPM 2.0 commands measured boot needs, as bytes: encoders for
//! TPM2_Startup, TPM2_GetCapability(TPM_CAP_PCRS) and TPM2_PCR_Extend,
//! and decoders for their responses. Pure: the transport (`tis`) moves
//! the bytes. All fields are big-endian (TPM 2.0 Part 1, 18.2).

use super::Alg;
use alloc::vec::Vec;

/// Command and response tags (TPM 2.0 Part 2, 6.9 TPM_ST).
const ST_NO_SESSIONS: u16 = 0x8001;
const ST_SESSIONS: u16 = 0x8002;
/// Command codes (Part 2, 6.5 TPM_CC).
const CC_STARTUP: u32 = 0x144;
const CC_GET_CAPABILITY: u32 = 0x17a;
const CC_PCR_EXTEND: u32 = 0x182;
/// TPM_SU_CLEAR (Part 2, 6.6): a fresh start, PCRs reset.
const SU_CLEAR: u16 = 0;
/// TPM_CAP_PCRS (Part 2, 6.12): the PCR allocation per bank.
const CAP_PCRS: u32 = 5;
/// TPM_RS_PW (Part 2, 7.4): the password session, with the empty
/// platform authorisation a fresh PCR needs (PCRs 0-15 are extended
/// without a policy; Part 3, 22.2).
const RS_PW: u32 = 0x4000_0009;
/// TPM_RC_SUCCESS and TPM_RC_INITIALIZE (Part 2, 6.6.3): the latter answers
/// TPM2_Startup when the TPM was already started since its last reset.
pub const RC_SUCCESS: u32 = 0;
pub const RC_INITIALIZE: u32 = 0x100;
/// The longest response this code reads: GetCapability(PCRS) with every
/// bank is under 64 bytes; TIS buffers are 4 KiB (QEMU tpm_tis).
pub const MAX_RESPONSE: usize = 4096;
/// Size of a response header: tag, size, response code.
pub const HEADER: usize = 10;

/// A malformed or failed response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header or its own size field, or sized past
    /// `MAX_RESPONSE`.
    Truncated,
    /// A tag this command cannot answer with.
    Tag(u16),
    /// The TPM's response code.
    Rc(u32),
    /// The response parameters do not parse.
    Malformed,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Error::Truncated => write!(f, "truncated response"),
            Error::Tag(t) => write!(f, "response tag {t:#06x} (not a TPM 2.0 answer)"),
            Error::Rc(rc) => write!(f, "response code {rc:#x}"),
            Error::Malformed => write!(f, "malformed response"),
        }
    }
}

fn command(tag: u16, cc: u32, params: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(HEADER + params.len());
    c.extend_from_slice(&tag.to_be_bytes());
    c.extend_from_slice(&((HEADER + params.len()) as u32).to_be_bytes());
    c.extend_from_slice(&cc.to_be_bytes());
    c.extend_from_slice(params);
    c
}

/// TPM2_Startup(TPM_SU_CLEAR) (Part 3, 9.3).
pub fn startup() -> Vec<u8> {
    command(ST_NO_SESSIONS, CC_STARTUP, &SU_CLEAR.to_be_bytes())
}

/// TPM2_GetCapability(TPM_CAP_PCRS, 0, 1) (Part 3, 30.2).
pub fn get_pcrs() -> Vec<u8> {
    let mut p = Vec::new();
    for w in [CAP_PCRS, 0, 1] {
        p.extend_from_slice(&w.to_be_bytes());
    }
    command(ST_NO_SESSIONS, CC_GET_CAPABILITY, &p)
}

/// TPM2_PCR_Extend(pcr, digests) with the empty password session (Part 3,
/// 22.2): the handle, the authorization area (size, TPM_RS_PW, empty
/// nonce, attributes 0, empty password), then TPML_DIGEST_VALUES.
pub fn pcr_extend(pcr: u32, digests: &[(Alg, &[u8])]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&pcr.to_be_bytes());
    p.extend_from_slice(&9u32.to_be_bytes());
    p.extend_from_slice(&RS_PW.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0]);
    p.extend_from_slice(&(digests.len() as u32).to_be_bytes());
    for (alg, d) in digests {
        p.extend_from_slice(&alg.id().to_be_bytes());
        p.extend_from_slice(d);
    }
    command(ST_SESSIONS, CC_PCR_EXTEND, &p)
}

/// The response code and the parameter area of `r`, checked against its
/// size field. A TPM answers an error with `ST_NO_SESSIONS` whatever the
/// command's tag (Part 1, 18.4); success carries the command's tag.
pub fn response(r: &[u8], tag: u16) -> Result<&[u8], Error> {
    let h = r.get(..HEADER).ok_or(Error::Truncated)?;
    let size = u32::from_be_bytes([h[2], h[3], h[4], h[5]]) as usize;
    if !(HEADER..=MAX_RESPONSE).contains(&size) || r.len() < size {
        return Err(Error::Truncated);
    }
    let t = u16::from_be_bytes([h[0], h[1]]);
    let rc = u32::from_be_bytes([h[6], h[7], h[8], h[9]]);
    if rc != RC_SUCCESS {
        return if t == ST_NO_SESSIONS || t == tag {
            Err(Error::Rc(rc))
        } else {
            Err(Error::Tag(t))
        };
    }
    if t != tag {
        return Err(Error::Tag(t));
    }
    Ok(&r[HEADER..size])
}

/// The response size a header announces (what the transport must read),
/// bounded by `MAX_RESPONSE`.
pub fn response_size(header: &[u8; HEADER]) -> Result<usize, Error> {
    let size = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    if (HEADER..=MAX_RESPONSE).contains(&size) {
        Ok(size)
    } else {
        Err(Error::Truncated)
    }
}

/// TPM2_Startup's outcome: Ok(true) started now, Ok(false) was already
/// started (TPM_RC_INITIALIZE: a reset the TPM did not see).
pub fn startup_response(r: &[u8]) -> Result<bool, Error> {
    match response(r, ST_NO_SESSIONS) {
        Ok(_) => Ok(true),
        Err(Error::Rc(RC_INITIALIZE)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The banks TPM2_GetCapability(TPM_CAP_PCRS) reports active: allocated
/// with at least one PCR selected (TPML_PCR_SELECTION, Part 2, 10.9.7),
/// in the TPM's order. Banks of algorithms this firmware cannot hash are
/// returned as `Err(alg id)`: extending without them leaves those PCRs
/// unmeasured, which the caller must refuse.
pub fn pcrs_response(r: &[u8]) -> Result<Vec<Result<Alg, u16>>, Error> {
    let p = response(r, ST_NO_SESSIONS)?;
    let mut rd = Reader(p);
    let _more = rd.u8()?;
    if rd.u32()? != CAP_PCRS {
        return Err(Error::Malformed);
    }
    let count = rd.u32()?;
    // TPM 2.0 defines a handful of hash algorithms; more banks than that
    // is a broken answer, not a TPM.
    if count > 16 {
        return Err(Error::Malformed);
    }
    let mut banks = Vec::new();
    for _ in 0..count {
        let id = rd.u16()?;
        let n = rd.u8()?;
        let select = rd.take(usize::from(n))?;
        if select.iter().any(|&b| b != 0) {
            banks.push(Alg::from_id(id).ok_or(id));
        }
    }
    Ok(banks)
}

/// TPM2_PCR_Extend's outcome.
pub fn extend_response(r: &[u8]) -> Result<(), Error> {
    response(r, ST_SESSIONS).map(drop)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_their_sizes_and_codes() {
        // TPM2_Startup(SU_CLEAR) as Part 3 9.3 lays it out.
        assert_eq!(startup(), [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0]);
        let g = get_pcrs();
        assert_eq!(g.len(), 22);
        assert_eq!(&g[..10], &[0x80, 1, 0, 0, 0, 22, 0, 0, 1, 0x7a]);
        let d = [0xabu8; 32];
        let e = pcr_extend(8, &[(Alg::Sha256, &d)]);
        assert_eq!(e.len(), 10 + 4 + 4 + 9 + 4 + 2 + 32);
        assert_eq!(&e[..2], &[0x80, 0x02]);
        assert_eq!(&e[6..10], &[0, 0, 1, 0x82]);
        assert_eq!(&e[10..14], &[0, 0, 0, 8]);
        assert_eq!(&e[18..22], &[0x40, 0, 0, 9]);
        assert_eq!(&e[27..31], &[0, 0, 0, 1]);
        assert_eq!(&e[31..33], &[0, 0x0b]);
    }

    fn resp(tag: u16, rc: u32, params: &[u8]) -> Vec<u8> {
        let mut r = tag.to_be_bytes().to_vec();
        r.extend_from_slice(&((10 + params.len()) as u32).to_be_bytes());
        r.extend_from_slice(&rc.to_be_bytes());
        r.extend_from_slice(params);
        r
    }

    #[test]
    fn startup_accepts_success_and_already_started() {
        assert_eq!(startup_response(&resp(0x8001, 0, &[])), Ok(true));
        assert_eq!(startup_response(&resp(0x8001, 0x100, &[])), Ok(false));
        // TPM_RC_FAILURE: what QEMU answers when its swtpm is gone.
        assert_eq!(
            startup_response(&resp(0x8001, 0x101, &[])),
            Err(Error::Rc(0x101))
        );
        assert_eq!(startup_response(&[0x80, 1, 0]), Err(Error::Truncated));
        let mut long = resp(0x8001, 0, &[]);
        long[5] = 200;
        assert_eq!(startup_response(&long), Err(Error::Truncated));
        assert_eq!(
            startup_response(&resp(0x8002, 0, &[])),
            Err(Error::Tag(0x8002))
        );
    }

    #[test]
    fn active_banks_are_those_with_pcrs_selected() {
        // What swtpm answers: sha1 and sha256 with all 24, sha384 with
        // none, and an algorithm this firmware cannot hash (SM3, 0x12).
        let mut p = std::vec![0u8];
        p.extend_from_slice(&5u32.to_be_bytes());
        p.extend_from_slice(&4u32.to_be_bytes());
        for (alg, sel) in [(4u16, 0xff), (0x0b, 0xff), (0x0c, 0), (0x12, 1)] {
            p.extend_from_slice(&alg.to_be_bytes());
            p.extend_from_slice(&[3, sel, sel, sel]);
        }
        let banks = pcrs_response(&resp(0x8001, 0, &p)).unwrap();
        assert_eq!(banks, [Ok(Alg::Sha1), Ok(Alg::Sha256), Err(0x12)]);
        // A selection that runs past the end.
        let cut = resp(0x8001, 0, &p[..p.len() - 2]);
        assert_eq!(pcrs_response(&cut), Err(Error::Malformed));
    }

    #[test]
    fn extend_needs_the_session_tag() {
        assert_eq!(extend_response(&resp(0x8002, 0, &[0; 9])), Ok(()));
        assert_eq!(
            extend_response(&resp(0x8001, 0x9a2, &[])),
            Err(Error::Rc(0x9a2))
        );
        assert_eq!(
            extend_response(&resp(0x8001, 0, &[])),
            Err(Error::Tag(0x8001))
        );
    }
}
