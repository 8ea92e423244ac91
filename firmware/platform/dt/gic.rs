//! The interrupt controller node: GICv3 (arm,gic-v3) or GICv2
//! (arm,cortex-a15-gic, arm,gic-400) with their ITS or v2m children.

use super::props::{enabled, first_irq, first_reg, is_compatible, prop_u32, regs};
use super::walk::Node;
use super::{Error, GicInfo};

pub(super) fn parse(gic: Node) -> Result<GicInfo, Error> {
    let mut g = GicInfo::default();
    let reg = regs(gic, "GIC reg")?;
    if is_compatible(gic, "arm,gic-v3") {
        g.version = 3;
        // reg: GICD, then #redistributor-regions GICR regions, then the
        // optional GICC, GICH, GICV (arm,gic-v3 binding).
        let nr = prop_u32(gic, "#redistributor-regions").unwrap_or(1) as usize;
        if nr == 0 || reg.len() < 1 + nr {
            return Err(Error::Malformed("GICv3 reg"));
        }
        g.gicd = reg[0].0;
        g.gicr = reg[1..1 + nr].to_vec();
        g.gicc = reg.get(1 + nr).map(|r| r.0);
        g.gich = reg.get(2 + nr).map(|r| r.0);
        g.gicv = reg.get(3 + nr).map(|r| r.0);
        for child in gic.children() {
            if is_compatible(child, "arm,gic-v3-its") && enabled(child) {
                g.its = Some(first_reg(child, "ITS reg")?.0);
            }
        }
    } else {
        g.version = 2;
        // reg: GICD, GICC, then GICH and GICV with virtualization (arm,gic binding).
        if reg.len() < 2 {
            return Err(Error::Malformed("GICv2 reg"));
        }
        g.gicd = reg[0].0;
        g.gicc = Some(reg[1].0);
        g.gich = reg.get(2).map(|r| r.0);
        g.gicv = reg.get(3).map(|r| r.0);
        for child in gic.children() {
            if is_compatible(child, "arm,gic-v2m-frame") && enabled(child) {
                let base = first_reg(child, "GICv2m reg")?.0;
                let spis = match (
                    prop_u32(child, "arm,msi-base-spi"),
                    prop_u32(child, "arm,msi-num-spis"),
                ) {
                    (Some(b), Some(n)) => Some((b, n)),
                    (None, None) => None,
                    _ => return Err(Error::Malformed("GICv2m SPI range")),
                };
                g.v2m = Some((base, spis));
            }
        }
    }
    if gic.info.interrupts.is_some() {
        g.maint_irq = Some(first_irq(gic, "GIC maintenance interrupt")?);
    }
    Ok(g)
}
