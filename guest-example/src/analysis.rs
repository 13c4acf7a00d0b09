//! The fleet analysis: per-device distance (haversine over consecutive fixes), speeds, and
//! time per status, from column slices.

use std::collections::{BTreeMap, HashMap};

use crate::bindings::pgcache::db::database::RefreshReport;
use crate::columns::Fixes;

/// Mean Earth radius in km (IUGG).
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance in km between two points in degrees.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

/// What one device did.
#[derive(Default)]
pub struct Device {
    pub fixes: u64,
    pub distance_km: f64,
    pub speed_sum: f64,
    pub speed_max: f32,
    /// Microseconds between a fix and the device's next one, by the first fix's status.
    pub status_micros: BTreeMap<String, i64>,
}

/// A device while the fixes are folded: status times by interned status number.
#[derive(Default)]
struct Running {
    device: Device,
    status_micros: Vec<i64>,
    /// Time, latitude, longitude and status number of the previous fix.
    last: Option<(i64, f64, f64, usize)>,
}

impl Device {
    pub fn avg_speed(&self) -> f64 {
        if self.fixes == 0 {
            0.0
        } else {
            self.speed_sum / self.fixes as f64
        }
    }
}

/// The whole fleet.
pub struct Fleet {
    pub fixes: u64,
    pub devices: BTreeMap<i32, Device>,
}

impl Fleet {
    /// Folds the fixes, which come in ascending `id` (and so time) order.
    pub fn compute(f: &Fixes) -> Fleet {
        let mut index: HashMap<i32, usize> = HashMap::new();
        let mut running: Vec<Running> = Vec::new();
        let mut statuses: Vec<&[u8]> = Vec::new();
        let mut fixes = 0;
        for i in 0..f.device.len() {
            if f.skip[i] {
                continue;
            }
            fixes += 1;
            let status = f.status(i);
            let status = match statuses.iter().position(|s| *s == status) {
                Some(n) => n,
                None => {
                    statuses.push(status);
                    statuses.len() - 1
                }
            };
            let slot = *index.entry(f.device[i]).or_insert_with(|| {
                running.push(Running::default());
                running.len() - 1
            });
            let r = &mut running[slot];
            let d = &mut r.device;
            d.fixes += 1;
            d.speed_sum += f64::from(f.speed[i]);
            d.speed_max = d.speed_max.max(f.speed[i]);
            if let Some((ts, lat, lon, previous)) = r.last {
                d.distance_km += haversine_km(lat, lon, f.lat[i], f.lon[i]);
                if r.status_micros.len() <= previous {
                    r.status_micros.resize(previous + 1, 0);
                }
                r.status_micros[previous] += f.ts[i] - ts;
            }
            r.last = Some((f.ts[i], f.lat[i], f.lon[i], status));
        }
        let devices = index
            .into_iter()
            .map(|(id, slot)| {
                let r = std::mem::take(&mut running[slot]);
                let mut device = r.device;
                for (n, micros) in r
                    .status_micros
                    .into_iter()
                    .enumerate()
                    .filter(|(_, t)| *t != 0)
                {
                    device
                        .status_micros
                        .insert(String::from_utf8_lossy(statuses[n]).into_owned(), micros);
                }
                (id, device)
            })
            .collect();
        Fleet { fixes, devices }
    }

    /// Time per status over all devices, in microseconds.
    pub fn status_totals(&self) -> BTreeMap<&str, i64> {
        let mut totals = BTreeMap::new();
        for d in self.devices.values() {
            for (s, t) in &d.status_micros {
                *totals.entry(s.as_str()).or_default() += t;
            }
        }
        totals
    }

    /// The human report.
    pub fn summary(&self, top: usize) -> String {
        let mut out = String::new();
        let total_km: f64 = self.devices.values().map(|d| d.distance_km).sum();
        let speed_sum: f64 = self.devices.values().map(|d| d.speed_sum).sum();
        let speed_max = self
            .devices
            .values()
            .map(|d| d.speed_max)
            .fold(0.0, f32::max);
        let fleet_avg = if self.fixes == 0 {
            0.0
        } else {
            speed_sum / self.fixes as f64
        };
        out += &format!(
            "  distance {total_km:.1} km; speed avg {fleet_avg:.1} km/h, max {speed_max:.1} km/h\n"
        );
        let totals = self.status_totals();
        let all: i64 = totals.values().sum();
        let parts: Vec<String> = totals
            .iter()
            .map(|(s, t)| {
                format!(
                    "{s} {:.1} h ({:.0}%)",
                    *t as f64 / 3.6e9,
                    100.0 * *t as f64 / all.max(1) as f64
                )
            })
            .collect();
        out += &format!("  time per status: {}\n", parts.join(", "));
        let mut ranked: Vec<(&i32, &Device)> = self.devices.iter().collect();
        ranked.sort_by(|a, b| b.1.distance_km.total_cmp(&a.1.distance_km));
        out += &format!("  top {} devices by distance:\n", top.min(ranked.len()));
        for (id, d) in ranked.into_iter().take(top) {
            out += &format!(
                "    device {id:>5}: {:8.1} km, avg {:5.1} km/h, max {:5.1} km/h, {} fixes\n",
                d.distance_km,
                d.avg_speed(),
                d.speed_max,
                d.fixes
            );
        }
        out
    }

    /// Everything, as one JSON object (for checking against SQL).
    pub fn to_json(&self, report: &RefreshReport) -> String {
        let devices: Vec<String> = self
            .devices
            .iter()
            .map(|(id, d)| {
                let status: Vec<String> = d.status_micros.iter().map(|(s, t)| format!("{}:{t}", quote(s))).collect();
                format!(
                    "{{\"device_id\":{id},\"fixes\":{},\"distance_km\":{:e},\"avg_speed\":{:e},\"max_speed\":{:e},\"status_micros\":{{{}}}}}",
                    d.fixes,
                    d.distance_km,
                    d.avg_speed(),
                    f64::from(d.speed_max),
                    status.join(",")
                )
            })
            .collect();
        format!(
            "{{\"fixes\":{},\"rows_from_database\":{},\"rows_from_cache\":{},\"full\":{},\"watermark\":{},\"devices\":[{}]}}",
            self.fixes,
            report.rows_from_database,
            report.rows_from_cache,
            report.full,
            report.watermark.as_deref().map_or("null".into(), quote),
            devices.join(",")
        )
    }
}

fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_a_known_distance() {
        // São Paulo (Sé) to Rio de Janeiro (Centro): about 361 km.
        let d = haversine_km(-23.5505, -46.6333, -22.9068, -43.1729);
        assert!((d - 361.0).abs() < 2.0, "{d}");
        assert_eq!(haversine_km(1.0, 2.0, 1.0, 2.0), 0.0);
    }
}
