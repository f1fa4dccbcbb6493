//! Real metrics of this machine, via sysinfo, refreshing only what a heartbeat reports: global
//! CPU usage, RAM, the mounted filesystems' space, load average and uptime. The process count
//! comes from counting `/proc` entries (no per-process reads); other systems fall back to
//! sysinfo's process list without any per-process detail.

use super::{DiskUsage, NodeMetrics, MAX_DISKS};
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

/// Filesystems that are not storage (their "usage" means nothing on a disk gauge).
const PSEUDO_FS: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "overlay",
    "squashfs",
    "nsfs",
    "ramfs",
    "autofs",
    "devpts",
    "mqueue",
    "tracefs",
    "debugfs",
    "securityfs",
    "fusectl",
    "configfs",
    "pstore",
    "bpf",
    "efivarfs",
    "hugetlbfs",
    "binfmt_misc",
];

pub struct Sampler {
    sys: System,
    disks: Disks,
    /// Disks' mount list is re-read every this many samples (mounts rarely change).
    relist_every: u32,
    samples: u32,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Sampler {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        let disks =
            Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage());
        Sampler {
            sys,
            disks,
            relist_every: 12,
            samples: 0,
        }
    }

    /// Takes one sample. CPU usage is measured since the previous call (the first call after
    /// `new` compares with the moment of `new`).
    pub fn sample(&mut self) -> NodeMetrics {
        self.sys.refresh_cpu_usage();
        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.samples = self.samples.wrapping_add(1);
        let relist = self.samples % self.relist_every == 0;
        if relist {
            self.disks =
                Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage());
        } else {
            self.disks
                .refresh_specifics(false, DiskRefreshKind::nothing().with_storage());
        }
        let load = System::load_average();
        let total = self.sys.total_memory();
        let cpu = f64::from(self.sys.global_cpu_usage());
        NodeMetrics {
            cpu_percent: if cpu.is_finite() {
                cpu.clamp(0.0, 100.0)
            } else {
                0.0
            },
            cpu_count: u32::try_from(self.sys.cpus().len()).ok().filter(|n| *n > 0),
            memory_used: self.sys.used_memory().min(total),
            memory_total: total,
            disks: self.disks(),
            load_avg: [load.one, load.five, load.fifteen].map(|l| {
                if l.is_finite() {
                    l.max(0.0)
                } else {
                    0.0
                }
            }),
            uptime_s: System::uptime(),
            process_count: process_count(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            interval_s: None,
            memory_usage: None,
            disk_usage: None,
        }
    }

    /// One entry per device (bind mounts of the same filesystem would count it twice), pseudo
    /// filesystems left out, except a container's overlay root.
    fn disks(&self) -> Vec<DiskUsage> {
        let mut out: Vec<DiskUsage> = Vec::new();
        let mut devices: Vec<String> = Vec::new();
        for d in self.disks.list() {
            let fs = d.file_system().to_string_lossy();
            let mount = d.mount_point().to_string_lossy().into_owned();
            let root = mount == "/";
            if (PSEUDO_FS.contains(&fs.as_ref()) && !root) || d.total_space() == 0 {
                continue;
            }
            let device = d.name().to_string_lossy().into_owned();
            if mount.is_empty()
                || out.iter().any(|o| o.mount == mount)
                || (!device.is_empty() && devices.contains(&device))
            {
                continue;
            }
            devices.push(device);
            let total = d.total_space();
            out.push(DiskUsage {
                mount: mount.chars().take(super::MAX_MOUNT).collect(),
                used: total.saturating_sub(d.available_space()),
                total,
            });
            if out.len() == MAX_DISKS {
                break;
            }
        }
        out
    }
}

/// Processes running now.
fn process_count() -> u64 {
    if let Ok(dir) = std::fs::read_dir("/proc") {
        return dir
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count() as u64;
    }
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::All,
        true,
        sysinfo::ProcessRefreshKind::nothing(),
    );
    sys.processes().len() as u64
}

/// The host's own IP addresses (every interface's, loopback and link-local left out, IPv4
/// first), at most `nodes::reach::MAX_ITEMS`: what the agent reports at registration.
pub fn addresses() -> Vec<String> {
    let networks = sysinfo::Networks::new_with_refreshed_list();
    let mut ips: Vec<std::net::IpAddr> = networks
        .values()
        .flat_map(|n| n.ip_networks().iter().map(|i| i.addr))
        .filter(|ip| {
            !ip.is_loopback()
                && !ip.is_unspecified()
                && match ip {
                    std::net::IpAddr::V4(v4) => !v4.is_link_local(),
                    std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
                }
        })
        .collect();
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    ips.truncate(crate::nodes::reach::MAX_ITEMS);
    ips.into_iter().map(|ip| ip.to_string()).collect()
}

/// The host name, for the default node id.
pub fn hostname() -> String {
    System::host_name()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Node names are restricted (`nodes::validate_node_name`); a host name may not be.
pub fn node_name_from(host: &str) -> String {
    let n: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(super::MAX_NAME)
        .collect();
    if n.is_empty() {
        "node".into()
    } else {
        n
    }
}

pub fn os_description() -> Option<String> {
    System::long_os_version().map(|s| s.chars().take(super::MAX_TEXT).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_real_and_valid() {
        let mut s = Sampler::new();
        let m = s.sample();
        assert!(m.memory_total > 0 && m.memory_used > 0);
        assert!(m.process_count > 0);
        assert!(m.uptime_s > 0);
        m.validate().unwrap();
    }

    #[test]
    fn host_names_become_valid_node_names() {
        assert_eq!(node_name_from("my host@corp"), "my-host-corp");
        crate::nodes::validate_node_name(&node_name_from(&hostname())).unwrap();
    }
}
