//! `cargo xtask <command>`: build, run, test and benchmark Hotstub.

mod assets;
mod bench;
mod build;
mod codeshape;
mod compare;
mod control;
mod fuzz;
mod host;
mod pvh_elf;
mod qemu;
mod tests;
mod unstable;
mod util;

use build::Arch;
use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use qemu::{Firmware, VmConfig};
use std::path::PathBuf;
use std::process::Command;
use util::{step, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build [--arch x86_64|aarch64|all] [--debug]
        build the firmware images target/firmware/hotstub-<arch>.bin
  run   [--arch x86_64|aarch64] [--machine M] [--kernel PATH] [--initrd PATH]
        [--append STR] [--smp N] [--memory SIZE] [--kernel-version 6.12|newest]
        [--disk IMAGE [--boot CHOICE]] [-- extra QEMU args]
        boot Linux with Hotstub in QEMU, console on this terminal
        (default: Debian 6.12 cloud kernel + busybox initramfs with a shell;
        --kernel-version newest: Debian unstable's current cloud kernel;
        --disk: boot the kernel installed on IMAGE, a virtio disk, --append
        added to its entry's command line; IMAGE debian, fedora or extlinux
        is the suite's test disk of that layout; --machine: QEMU's -M, e.g.
        pc or microvm, microvm,pcie=on)
  test  [--filter SUBSTR] [--jobs N]
        fmt, clippy, host unit tests, 20 s per fuzz target, image build and
        the QEMU boot matrix
  test  --soak [--soak-cycles VCPU[,DIMM[,PCI]]] [--filter SUBSTR]
        only the soak: 1,000 vCPU disable/enable cycles at EL3 (-smp 8, guest
        and host busy, two channel clients), 50 pc-dimm and 20 PCI cycles
        on q35 (the PCI one also under SeaBIOS)
  bench [--icount] [--runs N] [--arch x86_64|aarch64|all]
        boot time to init: Hotstub vs SeaBIOS/qboot (x86), direct boot/EDK2 (arm);
        wall time (default 5 runs) or, with --icount, guest instruction-counted
        time to init and to the kernel's clock (default 2 runs); on arm also
        the RAM the firmware keeps and the runtime vCPU hotplug latency
  bench --hotplug [--runs N]
        only the runtime vCPU hotplug latency at EL3 (enable -> online,
        disable -> ejected)
  bench --scale
        Linux's time to init on Hotstub's tables vs QEMU's (SeaBIOS) at 8 to
        1,024 possible vCPUs (x86 q35, icount), table bytes, Hotstub's own time
  bench --vmm cloud-hypervisor [--runs N] [--arch ...]
        time to init under cloud-hypervisor, nested (HOTSTUB_CLOUD_HYPERVISOR):
        Hotstub, EDK2 CloudHv + GRUB (x86) and CH's direct kernel boot
  compare [--arch x86_64|aarch64] [--machine M] [--smp S] [-- extra QEMU args]
        boot one machine under Hotstub and under SeaBIOS (x86) / EDK2 (arm)
        and print side by side what Linux saw (CPUs, topology, NUMA, memory,
        IOMMUs, TPM, ACPI tables and devices)
  compare --vmm cloud-hypervisor [--arch ...]
        the same under cloud-hypervisor, nested: Hotstub vs EDK2 CloudHv +
        GRUB (x86) vs CH's direct kernel boot, plus the PCI functions
  assets [--arch ...] [--kernel-version 6.12|newest|all]
        fetch the guest kernels and build the initramfs (done by run/test)
  fuzz  [TARGET] [--seconds N] [--runs N] [--jobs N] [--seed]
        run the libFuzzer targets in fuzz/ (needs a nightly toolchain; default
        60 s each, one at a time); --seed only (re)generates the seed corpora
        under fuzz/corpus/ (done before the first run). Targets:
        dt fw_cfg_dir e820 bzimage arm64_image cpulist memhp_slots
        memhp_tables pcihp_tables vmm_tables smbios hotplug_channel
  cpu   --socket PATH [--wait SECONDS] <enable CPUS|disable CPUS|status|help>
        talk to the EL3 firmware's control channel (runtime arm64 vCPU
        hotplug; QEMU: -M virt,secure=on,virtualization=on
        -chardev socket,id=ctl,path=PATH,server=on,wait=off
        -serial mon:stdio -serial chardev:ctl); prints the answer and, for a
        change, the line that ends it (default wait 60 s)
";

/// The commands and their options. The top-level help is `USAGE` as it
/// always was (one screen for every command); each command's own `--help`
/// comes from the doc comments here.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    override_help = USAGE,
    arg_required_else_help = true,
    args_override_self = true,
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the firmware images target/firmware/hotstub-<arch>.bin
    Build {
        /// x86_64, aarch64 or all
        #[arg(long, default_value = "all")]
        arch: String,
        /// An unoptimised build
        #[arg(long)]
        debug: bool,
    },
    /// Boot Linux with Hotstub in QEMU, console on this terminal
    Run(RunArgs),
    /// fmt, clippy, host unit tests, 20 s per fuzz target, image build and
    /// the QEMU boot matrix
    Test {
        /// Run only the tests whose name contains this
        #[arg(long, value_name = "SUBSTR")]
        filter: Option<String>,
        /// VMs run at once
        #[arg(long, value_name = "N", default_value_t = 2)]
        jobs: usize,
        #[command(flatten)]
        fw: FirmwareOverride,
        /// Skip fmt, clippy and the unit tests
        #[arg(long, hide = true)]
        no_static: bool,
        /// Only the soak: many hotplug cycles in one boot, under load
        /// (1,000 vCPU cycles at EL3, 50 pc-dimm and 20 PCI cycles on q35)
        #[arg(long)]
        soak: bool,
        /// The soak's cycles, VCPU[,DIMM[,PCI]] (default 1000,50,20)
        #[arg(long, value_name = "COUNTS", requires = "soak")]
        soak_cycles: Option<String>,
    },
    /// Boot time to init: Hotstub vs SeaBIOS/qboot (x86), direct boot/EDK2
    /// (arm)
    Bench {
        /// Guest instruction-counted time (repeatable) instead of wall time
        #[arg(long)]
        icount: bool,
        /// Only the runtime vCPU hotplug latency at EL3
        #[arg(long)]
        hotplug: bool,
        /// Linux's time on Hotstub's tables vs QEMU's at 8 to 1,024 vCPUs
        /// (x86) and 2 to 256 (arm64), icount
        #[arg(long)]
        scale: bool,
        /// With --scale: only these vCPU counts, e.g. 2,123
        #[arg(long, value_name = "LIST", requires = "scale", value_delimiter = ',')]
        cpus: Vec<u32>,
        /// Kernel from the Debian-style disk under icount: Hotstub vs EDK2 +
        /// GRUB vs Hotstub with -kernel
        #[arg(long, conflicts_with = "hotplug")]
        disk: bool,
        /// Runs per firmware (default 5; 2 with --icount)
        #[arg(long, value_name = "N")]
        runs: Option<usize>,
        /// x86_64, aarch64 or all
        #[arg(long, default_value = "all")]
        arch: String,
        /// cloud-hypervisor: time to init under CH (nested), Hotstub vs EDK2
        /// CloudHv (x86) vs CH's direct kernel boot
        #[arg(long, value_name = "VMM", conflicts_with_all = ["hotplug", "scale", "disk", "icount"])]
        vmm: Option<String>,
    },
    /// Boot one machine under Hotstub and under SeaBIOS (x86) / EDK2 (arm)
    /// and print side by side what Linux saw
    Compare {
        /// x86_64 or aarch64
        #[arg(long, default_value = "x86_64")]
        arch: String,
        /// QEMU -M value
        #[arg(long, value_name = "M")]
        machine: Option<String>,
        /// QEMU -smp value
        #[arg(long, value_name = "S")]
        smp: Option<String>,
        /// Extra QEMU arguments, after `--`
        #[arg(last = true, value_name = "QEMU ARGS")]
        extra: Vec<String>,
        /// cloud-hypervisor: Hotstub vs EDK2 CloudHv (x86) vs CH's direct
        /// kernel boot, nested (HOTSTUB_CLOUD_HYPERVISOR names CH)
        #[arg(long, value_name = "VMM", conflicts_with_all = ["machine", "smp"])]
        vmm: Option<String>,
    },
    /// Fetch the guest kernels and build the initramfs (done by run/test)
    Assets {
        /// x86_64, aarch64 or all
        #[arg(long, default_value = "all")]
        arch: String,
        /// 6.12, newest or all
        #[arg(long, value_name = "VERSION")]
        kernel_version: Option<String>,
    },
    /// Run the libFuzzer targets in fuzz/ (needs a nightly toolchain)
    Fuzz {
        /// One target (default: all of them, one after the other)
        #[arg(value_name = "TARGET")]
        target: Option<String>,
        /// Seconds per target (default 60 unless --runs is given)
        #[arg(long, value_name = "N")]
        seconds: Option<u64>,
        /// Executions per target
        #[arg(long, value_name = "N")]
        runs: Option<u64>,
        /// Targets run at once
        #[arg(long, value_name = "N", default_value_t = 1)]
        jobs: usize,
        /// Only (re)generate the seed corpora under fuzz/corpus/
        #[arg(long)]
        seed: bool,
    },
    /// Talk to the EL3 firmware's control channel (runtime arm64 vCPU
    /// hotplug)
    ///
    /// QEMU needs -M virt,secure=on,virtualization=on -chardev
    /// socket,id=ctl,path=PATH,server=on,wait=off -serial mon:stdio -serial
    /// chardev:ctl. Prints the answer and, for a change, the line that ends
    /// it.
    Cpu {
        /// The control channel's Unix socket
        #[arg(long, value_name = "PATH", required = true)]
        socket: PathBuf,
        /// Seconds to wait for a change to end
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        wait: u64,
        /// enable CPUS | disable CPUS | status | help
        #[arg(
            value_name = "COMMAND",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        words: Vec<String>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// x86_64 or aarch64
    #[arg(long)]
    arch: Option<String>,
    /// QEMU -M value (default: q35 on x86, virt on arm64), e.g. microvm
    #[arg(long, value_name = "M")]
    machine: Option<String>,
    /// Kernel image (default: Debian's 6.12 cloud kernel)
    #[arg(long, value_name = "PATH")]
    kernel: Option<String>,
    /// Initrd (default: the busybox initramfs with a shell)
    #[arg(long, value_name = "PATH")]
    initrd: Option<String>,
    /// Kernel command line
    #[arg(long, value_name = "STR")]
    append: Option<String>,
    /// QEMU -smp value
    #[arg(long, value_name = "N")]
    smp: Option<String>,
    /// QEMU -m value
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// 6.12, or newest: Debian unstable's current cloud kernel
    #[arg(long, value_name = "VERSION")]
    kernel_version: Option<String>,
    /// Boot from this disk image (a virtio disk) instead of -kernel;
    /// debian, fedora or extlinux: the suite's test disk of that layout
    #[arg(long, value_name = "IMAGE")]
    disk: Option<String>,
    /// Which disk, partition or entry to boot (opt/org.hotstub/boot)
    #[arg(long, value_name = "CHOICE", requires = "disk")]
    boot: Option<String>,
    /// An unoptimised firmware build
    #[arg(long, hide = true)]
    debug: bool,
    #[command(flatten)]
    fw: FirmwareOverride,
    /// Extra QEMU arguments, after `--`
    #[arg(last = true, value_name = "QEMU ARGS")]
    extra: Vec<String>,
}

/// `--firmware` (or HOTSTUB_FIRMWARE): run the guest side with another
/// firmware, to check the harness itself. Hidden on purpose.
#[derive(Args)]
struct FirmwareOverride {
    #[arg(long, hide = true)]
    firmware: Option<String>,
}

impl FirmwareOverride {
    fn get(&self) -> Result<Firmware> {
        match self
            .firmware
            .clone()
            .or_else(|| std::env::var("HOTSTUB_FIRMWARE").ok())
        {
            Some(f) => Firmware::parse(&f),
            None => Ok(Firmware::Hotstub),
        }
    }
}

fn main() {
    // `help` as a command, as before clap: the same text as --help.
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("help") && args.len() == 2 {
        args[1] = "--help".into();
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // No command: the usage on stderr and exit status 2, as before.
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                eprint!("{USAGE}");
                std::process::exit(2);
            }
            e.exit()
        }
    };
    let code = match real_main(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// The one arch of a command that boots one machine.
fn one_arch(arch: &str, cmd: &str) -> Result<Arch> {
    match Arch::parse(arch)?.as_slice() {
        [one] => Ok(*one),
        _ => Err(format!("{cmd} needs one --arch")),
    }
}

fn real_main(cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Build { arch, debug } => {
            let mut failed = Vec::new();
            for a in &Arch::parse(&arch)? {
                if let Err(e) = build::build(*a, debug) {
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
        Cmd::Run(o) => cmd_run(o),
        Cmd::Assets {
            arch,
            kernel_version,
        } => {
            let flavors = match kernel_version.as_deref() {
                None | Some("all") => assets::Flavor::ALL.to_vec(),
                Some(v) => vec![assets::Flavor::parse(v)?],
            };
            for a in Arch::parse(&arch)? {
                for f in &flavors {
                    assets::guest(a, *f)?;
                }
            }
            Ok(0)
        }
        Cmd::Test {
            filter,
            jobs,
            fw,
            no_static,
            soak,
            soak_cycles,
        } => tests::run(tests::Options {
            filter,
            jobs,
            firmware: fw.get()?,
            static_checks: !no_static && !soak,
            soak: match (soak, soak_cycles) {
                (false, _) => None,
                (true, None) => Some(tests::SOAK_FULL),
                (true, Some(s)) => Some(tests::SoakCounts::parse(&s)?),
            },
        }),
        Cmd::Fuzz {
            target,
            seconds,
            runs,
            jobs,
            seed,
        } => fuzz::cmd(fuzz::Options {
            target,
            seconds,
            runs,
            seed_only: seed,
            jobs,
        }),
        Cmd::Bench {
            icount,
            hotplug,
            scale,
            cpus,
            disk,
            runs,
            arch,
            vmm,
        } => {
            if let Some(v) = vmm {
                vmm_is_ch(&v)?;
                return bench::run_ch(&Arch::parse(&arch)?, runs.unwrap_or(1));
            }
            if scale {
                return bench::scale(&Arch::parse(&arch)?, &cpus);
            }
            if disk {
                return bench::run_disk(&Arch::parse(&arch)?, runs.unwrap_or(2));
            }
            if hotplug {
                bench::hotplug_only(runs.unwrap_or(5))?;
                return Ok(0);
            }
            let mode = if icount {
                bench::Mode::Icount
            } else {
                bench::Mode::Wall
            };
            // Under icount the runs repeat: a second one shows that they do.
            let runs = runs.unwrap_or(if mode == bench::Mode::Icount { 2 } else { 5 });
            bench::run(&Arch::parse(&arch)?, runs, mode)
        }
        Cmd::Compare {
            arch,
            machine,
            smp,
            extra,
            vmm,
        } => {
            if let Some(v) = vmm {
                vmm_is_ch(&v)?;
                let arch = one_arch(&arch, "compare")?;
                return match tests::ch_survey::compare(arch)? {
                    Err(why) => {
                        println!("compare --vmm cloud-hypervisor: SKIPPED: {why}");
                        Ok(0)
                    }
                    Ok(differ) if differ.is_empty() => Ok(0),
                    Ok(differ) => {
                        for d in differ {
                            println!("differs: {d}");
                        }
                        Ok(1)
                    }
                };
            }
            let m = compare::Machine {
                arch: one_arch(&arch, "compare")?,
                machine,
                smp,
                extra,
            };
            let differ = compare::compare(&m)?;
            Ok(if differ.is_empty() { 0 } else { 1 })
        }
        Cmd::Cpu {
            socket,
            wait,
            words,
        } => control::cli(&socket, &words, std::time::Duration::from_secs(wait)),
    }
}

/// `--vmm`: cloud-hypervisor is the one VMM besides QEMU.
fn vmm_is_ch(v: &str) -> Result<()> {
    match v {
        "cloud-hypervisor" | "ch" => Ok(()),
        _ => Err(format!(
            "--vmm {v}: only cloud-hypervisor (QEMU is the default)"
        )),
    }
}

fn cmd_run(o: RunArgs) -> Result<i32> {
    let arch = match &o.arch {
        Some(a) => one_arch(a, "run")?,
        None => Arch::X86_64,
    };
    let fw = o.fw.get()?;
    qemu::ensure_qemu(arch)?;
    if fw == Firmware::Hotstub {
        build::build(arch, o.debug)?;
    }
    let mut cfg = VmConfig::new(arch, fw);
    if let Some(m) = &o.machine {
        cfg.machine = m.clone();
    }
    if qemu::is_microvm(&cfg.machine) {
        // Linux's TSC calibration on microvm under plain TCG (tests::matrix::microvm).
        cfg.extra.extend(["-icount".into(), "shift=auto".into()]);
    }
    if let Some(disk) = o.disk.clone() {
        if o.kernel.is_none() {
            return run_disk(cfg, arch, &disk, o);
        }
        let device = qemu::virtio_blk_device(&cfg.machine);
        cfg.extra
            .extend(virtio_disk(&PathBuf::from(disk), false, device));
    }
    let (kernel, initrd) = match (o.kernel, o.initrd) {
        (Some(k), Some(i)) => (PathBuf::from(k), Some(PathBuf::from(i))),
        (k, i) => {
            let flavor = match o.kernel_version {
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
    let default_append = format!("{default_append}{}", guest_modules(&cfg.machine));
    cfg.append = Some(o.append.unwrap_or(default_append));
    launch(cfg, o.smp, o.memory, o.extra)
}

/// Starts the VM `cfg` describes with `o`'s `--smp`, `--memory` and extra
/// QEMU arguments, its console on this terminal.
fn launch(
    mut cfg: VmConfig,
    smp: Option<String>,
    memory: Option<String>,
    extra: Vec<String>,
) -> Result<i32> {
    if let Some(s) = smp {
        cfg.smp = s;
    }
    if let Some(m) = memory {
        cfg.memory = m;
    }
    cfg.extra.extend(extra);
    let mut c = cfg.command("mon:stdio", None);
    step(format!("QEMU command line:\n  {}", util::render(&c)));
    step("guest console follows; quit QEMU with Ctrl-A x");
    exec(&mut c)
}

/// `run --disk` without `--kernel`: the firmware boots what the disk's
/// boot configuration names; `--append` and `--boot` go through the
/// fw_cfg files the firmware reads for that (README, "Booting from a disk").
fn run_disk(mut cfg: VmConfig, arch: Arch, disk: &str, o: RunArgs) -> Result<i32> {
    let (path, test_disk) = match assets::DiskImage::parse(disk) {
        Some(image) if !std::path::Path::new(disk).exists() => {
            let flavor = match &o.kernel_version {
                Some(v) => assets::Flavor::parse(v)?,
                None => assets::Flavor::Lts,
            };
            let g = assets::guest(arch, flavor)?;
            (assets::disk_image(arch, &g, image)?, true)
        }
        _ => (PathBuf::from(disk), false),
    };
    // The suite's cached test disks stay as they are: writes go to a
    // temporary overlay.
    let device = qemu::virtio_blk_device(&cfg.machine);
    cfg.extra.extend(virtio_disk(&path, test_disk, device));
    // The suite's test disks boot its initramfs: a shell, not a power-off.
    let append = o
        .append
        .unwrap_or_else(|| format!("hotstub.action=shell{}", guest_modules(&cfg.machine)));
    for (file, text) in [("cmdline", Some(append)), ("boot", o.boot)] {
        if let Some(t) = text {
            cfg.extra.extend([
                "-fw_cfg".into(),
                format!(
                    "name=opt/org.hotstub/{file},string={}",
                    t.replace(',', ",,")
                ),
            ]);
        }
    }
    launch(cfg, o.smp, o.memory, o.extra)
}

/// What the suite's initramfs must load on `machine`: microvm's
/// virtio-mmio driver (a module in Debian's x86 kernel).
fn guest_modules(machine: &str) -> &'static str {
    if qemu::is_microvm(machine) {
        " hotstub.modules=virtio_mmio"
    } else {
        ""
    }
}

/// QEMU arguments for `image` as a virtio-blk disk on `device`.
fn virtio_disk(image: &std::path::Path, snapshot: bool, device: &str) -> Vec<String> {
    let snapshot = if snapshot { ",snapshot=on" } else { "" };
    vec![
        "-drive".into(),
        format!(
            "file={},if=none,id=disk0,format=raw{snapshot}",
            image.display()
        ),
        "-device".into(),
        format!("{device},drive=disk0"),
    ]
}

fn exec(c: &mut Command) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let e = c.exec();
    Err(format!(
        "cannot exec {}: {e}",
        c.get_program().to_string_lossy()
    ))
}

#[cfg(test)]
mod cli_tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Cmd {
        let args = std::iter::once("xtask").chain(line.split_whitespace());
        Cli::try_parse_from(args)
            .unwrap_or_else(|e| panic!("`{line}`: {e}"))
            .cmd
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_qemu_args_after_the_separator() {
        let Cmd::Run(o) = parse("run --arch=aarch64 --smp 4 -- -M virt,secure=on -s") else {
            panic!("not run");
        };
        assert_eq!(o.arch.as_deref(), Some("aarch64"));
        assert_eq!(o.smp.as_deref(), Some("4"));
        assert_eq!(o.extra, ["-M", "virt,secure=on", "-s"]);
    }

    #[test]
    fn defaults_and_the_last_repeat_wins() {
        let Cmd::Test { filter, jobs, .. } = parse("test --filter a --filter x86_64/boot") else {
            panic!("not test");
        };
        assert_eq!((filter.as_deref(), jobs), (Some("x86_64/boot"), 2));
        let Cmd::Build { arch, debug } = parse("build") else {
            panic!("not build");
        };
        assert_eq!((arch.as_str(), debug), ("all", false));
    }

    #[test]
    fn fuzz_target_anywhere_among_the_options() {
        for line in ["fuzz dt --seconds 5", "fuzz --seconds 5 dt"] {
            let Cmd::Fuzz {
                target,
                seconds,
                jobs,
                ..
            } = parse(line)
            else {
                panic!("not fuzz");
            };
            assert_eq!((target.as_deref(), seconds, jobs), (Some("dt"), Some(5), 1));
        }
    }

    #[test]
    fn cpu_words_follow_the_options() {
        let Cmd::Cpu {
            socket,
            wait,
            words,
        } = parse("cpu --socket /tmp/s enable 2-3")
        else {
            panic!("not cpu");
        };
        assert_eq!(socket, PathBuf::from("/tmp/s"));
        assert_eq!(wait, 60);
        assert_eq!(words, ["enable", "2-3"]);
        assert!(Cli::try_parse_from(["xtask", "cpu", "status"]).is_err());
    }
}
