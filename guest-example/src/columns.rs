//! Taking the columns the analysis needs out of a host result, as plain slices.

use crate::bindings::pgcache::db::database::{
    self as db, ColumnData, ColumnValues, Rows, ScalarData,
};

/// The fixes of a result, column by column, in ascending `id` order.
pub struct Fixes {
    pub device: Vec<i32>,
    pub ts: Vec<i64>,
    pub lat: Vec<f64>,
    pub lon: Vec<f64>,
    pub speed: Vec<f32>,
    /// Status text: value i is `status_data[status_offsets[i]..status_offsets[i + 1]]`.
    pub status_offsets: Vec<i32>,
    pub status_data: Vec<u8>,
    /// Rows with a NULL in any of these columns (left out of the analysis).
    pub skip: Vec<bool>,
}

impl Fixes {
    /// Reads the columns `device_id, ts, lat, lon, speed, status` of `rows`.
    pub fn take(rows: &Rows) -> Result<Fixes, String> {
        let schema = rows.schema();
        let index = |name: &str| {
            schema
                .iter()
                .position(|c| c.name == name)
                .map(|i| i as u32)
                .ok_or_else(|| format!("the result has no column {name}"))
        };
        let get = |name: &str| -> Result<ColumnValues, String> {
            rows.column(index(name)?)
                .map_err(|e| format!("reading {name}: {}", describe(&e)))
        };
        let n = rows.num_rows() as usize;
        let mut skip = vec![false; n];
        let mut note_nulls = |c: &ColumnValues| {
            if let Some(bits) = &c.validity {
                for (i, s) in skip.iter_mut().enumerate() {
                    if bits[i / 8] & (1 << (i % 8)) == 0 {
                        *s = true;
                    }
                }
            }
        };
        let device = get("device_id")?;
        let ts = get("ts")?;
        let lat = get("lat")?;
        let lon = get("lon")?;
        let speed = get("speed")?;
        let status = get("status")?;
        for c in [&device, &ts, &lat, &lon, &speed, &status] {
            note_nulls(c);
        }
        let (status_offsets, status_data) = match status.data {
            ColumnData::Scalar(ScalarData::Utf8(v)) => (v.offsets, v.data),
            _ => return Err("status is not a text column".into()),
        };
        Ok(Fixes {
            device: match device.data {
                ColumnData::Scalar(ScalarData::Int32(v)) => v,
                _ => return Err("device_id is not an integer column".into()),
            },
            ts: match ts.data {
                ColumnData::Scalar(ScalarData::Timestamptz(v) | ScalarData::Timestamp(v)) => v,
                _ => return Err("ts is not a timestamp column".into()),
            },
            lat: float64(lat.data, "lat")?,
            lon: float64(lon.data, "lon")?,
            speed: match speed.data {
                ColumnData::Scalar(ScalarData::Float32(v)) => v,
                ColumnData::Scalar(ScalarData::Float64(v)) => {
                    v.into_iter().map(|x| x as f32).collect()
                }
                _ => return Err("speed is not a floating-point column".into()),
            },
            status_offsets,
            status_data,
            skip,
        })
    }

    pub fn status(&self, i: usize) -> &[u8] {
        &self.status_data[self.status_offsets[i] as usize..self.status_offsets[i + 1] as usize]
    }
}

fn float64(data: ColumnData, name: &str) -> Result<Vec<f64>, String> {
    match data {
        ColumnData::Scalar(ScalarData::Float64(v)) => Ok(v),
        _ => Err(format!("{name} is not a double precision column")),
    }
}

/// One line for a host error.
pub fn describe(e: &db::Error) -> String {
    match e {
        db::Error::Database(d) => format!("{} {} ({})", d.severity, d.message, d.code),
        db::Error::BadParameter(m) => format!("bad parameter: {m}"),
        db::Error::Denied(m) => format!("denied: {m}"),
        db::Error::LimitExceeded(m) => format!("limit exceeded: {m}"),
        db::Error::Timeout(m) => format!("timeout: {m}"),
        db::Error::CacheIo(m) => format!("cache: {m}"),
        db::Error::Other(m) => m.clone(),
    }
}
