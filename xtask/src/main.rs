//! `cargo xtask <command>`: build, run, test and benchmark Hotstub.

mod assets;
mod bench;
mod build;
mod compare;
mod control;
mod fuzz;
mod host;
mod qemu;
mod tests;
mod unstable;
mod util;

use build::Arch;
use qemu::{Firmware, VmConfig};
use std::path::PathBuf;
use std::process::Command;
use util::{step, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build [--arch x86_64|aarch64|all] [--debug]
        build the firmware images target/firmware/hotstub-<arch>.bin
  run   [--arch x86_64|aarch64] [--kernel PATH] [--initrd PATH] [--append STR]
        [--smp N] [--memory SIZE] [--kernel-version 6.12|newest]
        [-- extra QEMU args]
        boot Linux with Hotstub in QEMU, console on this terminal
        (default: Debian 6.12 cloud kernel + busybox initramfs with a shell;
        --kernel-version newest: Debian unstable's current cloud kernel)
  test  [--filter SUBSTR] [--jobs N]
        fmt, clippy, host unit tests, 20 s per fuzz target, image build and
        the QEMU boot matrix
  bench [--icount] [--runs N] [--arch x86_64|aarch64|all]
        boot time to init: Hotstub vs SeaBIOS/qboot (x86), direct boot/EDK2 (arm);
        wall time (default 5 runs) or, with --icount, guest instruction-counted
        time to init and to the kernel's clock (default 2 runs); on arm also
        the RAM the firmware keeps and the runtime vCPU hotplug latency
  bench --hotplug [--runs N]
        only the runtime vCPU hotplug latency at EL3 (enable -> online,
        disable -> ejected)
  compare [--arch x86_64|aarch64] [--machine M] [--smp S] [-- extra QEMU args]
        boot one machine under Hotstub and under SeaBIOS (x86) / EDK2 (arm)
        and print side by side what Linux saw (CPUs, topology, NUMA, memory,
        IOMMUs, TPM, ACPI tables and devices)
  assets [--arch ...] [--kernel-version 6.12|newest|all]
        fetch the guest kernels and build the initramfs (done by run/test)
  fuzz  [TARGET] [--seconds N] [--runs N] [--jobs N] [--seed]
        run the libFuzzer targets in fuzz/ (needs a nightly toolchain; default
        60 s each, one at a time); --seed only (re)generates the seed corpora
        under fuzz/corpus/ (done before the first run). Targets:
        dt fw_cfg_dir e820 bzimage arm64_image cpulist memhp_slots
        memhp_tables pcihp_tables vmm_tables smbios_anchor hotplug_channel
  cpu   --socket PATH [--wait SECONDS] <enable CPUS|disable CPUS|status|help>
        talk to the EL3 firmware's control channel (runtime arm64 vCPU
        hotplug; QEMU: -M virt,secure=on,virtualization=on
        -chardev socket,id=ctl,path=PATH,server=on,wait=off
        -serial mon:stdio -serial chardev:ctl); prints the answer and, for a
        change, the line that ends it (default wait 60 s)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match real_main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Simple option parser: `--name value`, `--flag`, and a `--` tail.
struct Opts {
    pairs: Vec<(String, Option<String>)>,
    tail: Vec<String>,
}

impl Opts {
    fn parse(args: &[String], flags: &[&str], valued: &[&str]) -> Result<Opts> {
        let mut pairs = Vec::new();
        let mut tail = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                tail = args[i + 1..].to_vec();
                break;
            }
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let key = name.trim_start_matches("--");
            if flags.contains(&key) && name.starts_with("--") {
                pairs.push((key.to_string(), None));
            } else if valued.contains(&key) && name.starts_with("--") {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or(format!("{name} needs a value"))?
                    }
                };
                pairs.push((key.to_string(), Some(v)));
            } else {
                return Err(format!("unknown argument `{a}`\n\n{USAGE}"));
            }
            i += 1;
        }
        Ok(Opts { pairs, tail })
    }
    fn flag(&self, k: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == k)
    }
    fn val(&self, k: &str) -> Option<String> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.clone())
    }
}

/// `--firmware` (or HOTSTUB_FIRMWARE): run the guest side with another
/// firmware, to check the harness itself. Not in the usage text on purpose.
fn firmware_override(o: &Opts) -> Result<Firmware> {
    match o
        .val("firmware")
        .or_else(|| std::env::var("HOTSTUB_FIRMWARE").ok())
    {
        Some(f) => Firmware::parse(&f),
        None => Ok(Firmware::Hotstub),
    }
}

fn real_main(args: Vec<String>) -> Result<i32> {
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return Ok(2);
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "build" => {
            let o = Opts::parse(rest, &["debug"], &["arch"])?;
            let arches = Arch::parse(&o.val("arch").unwrap_or_else(|| "all".into()))?;
            let mut failed = Vec::new();
            for a in &arches {
                if let Err(e) = build::build(*a, o.flag("debug")) {
                    eprintln!("xtask: error: {e}");
                    failed.push(a.name());
                }
            }
            if failed.is_empty() {
                Ok(0)
            } else {
                Err(format!("firmware build failed for {}", failed.join(", ")))
            }
        }
        "run" => {
            let o = Opts::parse(
                rest,
                &["debug"],
                &[
                    "arch",
                    "kernel",
                    "initrd",
                    "append",
                    "smp",
                    "memory",
                    "firmware",
                    "kernel-version",
                ],
            )?;
            cmd_run(&o)
        }
        "assets" => {
            let o = Opts::parse(rest, &[], &["arch", "kernel-version"])?;
            let flavors = match o.val("kernel-version").as_deref() {
                None | Some("all") => assets::Flavor::ALL.to_vec(),
                Some(v) => vec![assets::Flavor::parse(v)?],
            };
            for a in Arch::parse(&o.val("arch").unwrap_or_else(|| "all".into()))? {
                for f in &flavors {
                    assets::guest(a, *f)?;
                }
            }
            Ok(0)
        }
        "test" => {
            let o = Opts::parse(rest, &["no-static"], &["filter", "jobs", "firmware"])?;
            let jobs = match o.val("jobs") {
                Some(j) => j.parse().map_err(|_| "--jobs needs a number")?,
                None => 2,
            };
            tests::run(tests::Options {
                filter: o.val("filter"),
                jobs,
                firmware: firmware_override(&o)?,
                static_checks: !o.flag("no-static"),
            })
        }
        "fuzz" => {
            // One optional positional argument: the target.
            let (target, rest): (Vec<String>, Vec<String>) = {
                let mut target = Vec::new();
                let mut others = Vec::new();
                let mut want_value = false;
                for a in rest {
                    if !want_value && !a.starts_with("--") && target.is_empty() {
                        target.push(a.clone());
                    } else {
                        want_value =
                            !want_value && ["--seconds", "--runs", "--jobs"].contains(&a.as_str());
                        others.push(a.clone());
                    }
                }
                (target, others)
            };
            let o = Opts::parse(&rest, &["seed"], &["seconds", "runs", "jobs"])?;
            let num = |k: &str| -> Result<Option<u64>> {
                o.val(k)
                    .map(|v| v.parse().map_err(|_| format!("--{k} needs a number")))
                    .transpose()
            };
            fuzz::cmd(fuzz::Options {
                target: target.into_iter().next(),
                seconds: num("seconds")?,
                runs: num("runs")?,
                seed_only: o.flag("seed"),
                jobs: num("jobs")?.unwrap_or(1) as usize,
            })
        }
        "bench" => {
            let o = Opts::parse(rest, &["icount", "hotplug"], &["runs", "arch"])?;
            if o.flag("hotplug") {
                let runs = o.val("runs").map(|r| r.parse()).transpose();
                let runs: usize = runs.map_err(|_| "--runs needs a number")?.unwrap_or(5);
                bench::hotplug_only(runs)?;
                return Ok(0);
            }
            let mode = if o.flag("icount") {
                bench::Mode::Icount
            } else {
                bench::Mode::Wall
            };
            // Under icount the runs repeat: a second one shows that they do.
            let runs = match o.val("runs") {
                Some(r) => r.parse().map_err(|_| "--runs needs a number")?,
                None if mode == bench::Mode::Icount => 2,
                None => 5,
            };
            let arches = Arch::parse(&o.val("arch").unwrap_or_else(|| "all".into()))?;
            bench::run(&arches, runs, mode)
        }
        "compare" => {
            let o = Opts::parse(rest, &[], &["arch", "machine", "smp"])?;
            let arch =
                match Arch::parse(&o.val("arch").unwrap_or_else(|| "x86_64".into()))?.as_slice() {
                    [one] => *one,
                    _ => return Err("compare needs one --arch".into()),
                };
            let m = compare::Machine {
                arch,
                machine: o.val("machine"),
                smp: o.val("smp"),
                extra: o.tail.clone(),
            };
            let differ = compare::compare(&m)?;
            Ok(if differ.is_empty() { 0 } else { 1 })
        }
        "cpu" => {
            // The words of the command are plain arguments, not options.
            let split = rest
                .iter()
                .position(|a| !a.starts_with("--") && !is_option_value(rest, a))
                .unwrap_or(rest.len());
            let o = Opts::parse(&rest[..split], &[], &["socket", "wait"])?;
            let socket = o.val("socket").ok_or("cpu needs --socket PATH")?;
            let wait = match o.val("wait") {
                Some(w) => w.parse().map_err(|_| "--wait needs a number of seconds")?,
                None => 60,
            };
            control::cli(
                std::path::Path::new(&socket),
                &rest[split..],
                std::time::Duration::from_secs(wait),
            )
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        _ => Err(format!("unknown command `{cmd}`\n\n{USAGE}")),
    }
}

/// Whether `a` is the value of a valued `cpu` option (`--socket PATH`).
fn is_option_value(args: &[String], a: &String) -> bool {
    let i = args.iter().position(|x| std::ptr::eq(x, a)).unwrap_or(0);
    i > 0 && matches!(args[i - 1].as_str(), "--socket" | "--wait")
}

fn cmd_run(o: &Opts) -> Result<i32> {
    let arch = match o.val("arch") {
        Some(a) => match Arch::parse(&a)?.as_slice() {
            [one] => *one,
            _ => return Err("run needs one --arch".into()),
        },
        None => Arch::X86_64,
    };
    let fw = firmware_override(o)?;
    qemu::ensure_qemu(arch)?;
    if fw == Firmware::Hotstub {
        build::build(arch, o.flag("debug"))?;
    }
    let mut cfg = VmConfig::new(arch, fw);
    let (kernel, initrd) = match (o.val("kernel"), o.val("initrd")) {
        (Some(k), Some(i)) => (PathBuf::from(k), Some(PathBuf::from(i))),
        (k, i) => {
            let flavor = match o.val("kernel-version") {
                Some(v) => assets::Flavor::parse(&v)?,
                None => assets::Flavor::Lts,
            };
            let g = assets::guest(arch, flavor)?;
            let kernel = k.map(PathBuf::from).unwrap_or(g.kernel.image);
            // A user-supplied kernel gets our initramfs only if it is ours.
            (kernel, Some(i.map(PathBuf::from).unwrap_or(g.initrd)))
        }
    };
    cfg.kernel = Some(kernel);
    cfg.initrd = initrd;
    let default_append = match arch {
        Arch::X86_64 => "console=ttyS0 hotstub.action=shell",
        // No console=: the firmware's SPCR table names the PL011.
        Arch::Aarch64 => "hotstub.action=shell",
    };
    cfg.append = Some(o.val("append").unwrap_or_else(|| default_append.into()));
    if let Some(s) = o.val("smp") {
        cfg.smp = s;
    }
    if let Some(m) = o.val("memory") {
        cfg.memory = m;
    }
    cfg.extra = o.tail.clone();
    let mut c = cfg.command("mon:stdio", None);
    step(format!("QEMU command line:\n  {}", util::render(&c)));
    step("guest console follows; quit QEMU with Ctrl-A x");
    exec(&mut c)
}

fn exec(c: &mut Command) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let e = c.exec();
    Err(format!(
        "cannot exec {}: {e}",
        c.get_program().to_string_lossy()
    ))
}
