//! From header fields to a volume's geometry: which axes are spatial, spacing, origin and
//! directions in LPS.

use std::path::Path;

use super::header::Header;
use crate::io::IoError;

/// The geometry of a NRRD file, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub sizes: [usize; 3],
    pub channels: usize,
    /// The axis of the file that holds channels, if any.
    pub channel_axis: Option<usize>,
    pub channel_kind: Option<String>,
    pub spacing: [f64; 3],
    pub origin: [f64; 3],
    pub direction: [[f64; 3]; 3],
    pub measurement_frame: Option<[[f64; 3]; 3]>,
    /// What was converted on the way (e.g. RAS to LPS), for the log and `enamel info`.
    pub notes: Vec<String>,
}

const SPATIAL_KINDS: &[&str] = &["domain", "space", "???", "none"];
const OTHER_KINDS: &[&str] = &[
    "time",
    "list",
    "point",
    "vector",
    "covariant-vector",
    "normal",
    "stub",
    "scalar",
    "complex",
    "2-vector",
    "3-color",
    "RGB-color",
    "HSV-color",
    "XYZ-color",
    "4-color",
    "RGBA-color",
    "2D-symmetric-matrix",
    "2D-masked-symmetric-matrix",
    "2D-matrix",
    "2D-masked-matrix",
    "3-gradient",
    "3-normal",
    "4-vector",
    "quaternion",
    "3D-symmetric-matrix",
    "3D-masked-symmetric-matrix",
    "3D-matrix",
    "3D-masked-matrix",
];

/// Sign flips that take a space's coordinates to LPS, and a note when something was assumed.
fn space_to_lps(space: &str, path: &Path) -> Result<([f64; 3], Option<String>), IoError> {
    let flips = match space.to_ascii_lowercase().as_str() {
        "left-posterior-superior" | "lps" => ([1.0, 1.0, 1.0], None),
        "right-anterior-superior" | "ras" => (
            [-1.0, -1.0, 1.0],
            Some(format!("space {space} converted to LPS (x, y negated)")),
        ),
        "left-anterior-superior" | "las" => (
            [1.0, -1.0, 1.0],
            Some(format!("space {space} converted to LPS (y negated)")),
        ),
        "scanner-xyz" | "3d-right-handed" | "3d-left-handed" => (
            [1.0, 1.0, 1.0],
            Some(format!(
                "space {space} taken as LPS (no patient axes known)"
            )),
        ),
        _ => {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: "space".into(),
                value: space.into(),
                message: "expected a 3-D space such as left-posterior-superior (time spaces are \
                          not supported)"
                    .into(),
            })
        }
    };
    Ok(flips)
}

fn geometry_error(path: &Path, message: String) -> IoError {
    IoError::Geometry {
        path: path.to_path_buf(),
        message,
    }
}

/// Resolves the geometry of `header`.
pub fn layout(header: &Header, path: &Path) -> Result<Layout, IoError> {
    let dim = header.dimension;
    let field_error = |field: &str, value: String, message: String| IoError::Field {
        path: path.to_path_buf(),
        field: field.into(),
        value,
        message,
    };

    if let Some(kinds) = &header.kinds {
        for k in kinds {
            if !SPATIAL_KINDS.contains(&k.as_str()) && !OTHER_KINDS.contains(&k.as_str()) {
                let msg = "not a NRRD kind".to_string();
                return Err(field_error("kinds", k.clone(), msg));
            }
        }
    }
    let kind_is_spatial = |a: usize| {
        header
            .kinds
            .as_ref()
            .is_none_or(|k| SPATIAL_KINDS.contains(&k[a].as_str()))
    };

    // Which axes are spatial: `space directions` decide when present, then `kinds`, then NaN
    // spacings; a 4-D file with none of them is ambiguous.
    let spatial: Vec<bool> = if let Some(dirs) = &header.space_directions {
        for (a, d) in dirs.iter().enumerate() {
            if d.is_some() && !kind_is_spatial(a) {
                let kinds = header
                    .kinds
                    .as_ref()
                    .map(|k| k.join(" "))
                    .unwrap_or_default();
                let msg = format!("axis {a} has a space direction but a non-spatial kind");
                return Err(field_error("kinds", kinds, msg));
            }
        }
        dirs.iter().map(Option::is_some).collect()
    } else if header.kinds.is_some() {
        (0..dim).map(kind_is_spatial).collect()
    } else if let Some(s) = &header.spacings {
        s.iter().map(|x| !x.is_nan()).collect()
    } else if dim <= 3 {
        vec![true; dim]
    } else {
        let msg = "a 4-D file needs `kinds` or `space directions` to tell its channel axis".into();
        return Err(geometry_error(path, msg));
    };

    let spatial_axes: Vec<usize> = (0..dim).filter(|&a| spatial[a]).collect();
    let other_axes: Vec<usize> = (0..dim).filter(|&a| !spatial[a]).collect();
    if spatial_axes.is_empty() || spatial_axes.len() > 3 {
        let msg = format!("{} spatial axes; a volume has 1 to 3", spatial_axes.len());
        return Err(geometry_error(path, msg));
    }
    if other_axes.len() > 1 {
        let msg = format!("axes {other_axes:?} are all non-spatial; at most one channel axis");
        return Err(geometry_error(path, msg));
    }
    let channel_axis = other_axes.first().copied();
    let channels = channel_axis.map_or(1, |a| header.sizes[a]);
    let channel_kind = channel_axis.and_then(|a| header.kinds.as_ref().map(|k| k[a].clone()));

    let mut notes = Vec::new();
    let flips = match &header.space {
        Some(space) => {
            let (f, note) = space_to_lps(space, path)?;
            notes.extend(note);
            f
        }
        None => [1.0; 3],
    };
    let space_dim = header.space_dimension.or(header.space.as_ref().map(|_| 3));
    if let (Some(space), Some(sd)) = (&header.space, header.space_dimension) {
        if sd != 3 {
            return Err(field_error(
                "space dimension",
                sd.to_string(),
                format!("{space} is 3-D"),
            ));
        }
    }

    let to_3d = |v: &[f64], field: &str| -> Result<[f64; 3], IoError> {
        let sd = space_dim.unwrap_or(v.len());
        if v.len() != sd || !(2..=3).contains(&sd) || v.iter().any(|x| !x.is_finite()) {
            let text = format!("{v:?}");
            let msg = format!("expected {sd} finite components in a 2-D or 3-D space");
            return Err(field_error(field, text, msg));
        }
        let z = if sd == 3 { v[2] } else { 0.0 };
        Ok([v[0] * flips[0], v[1] * flips[1], z * flips[2]])
    };

    let mut columns: Vec<[f64; 3]> = Vec::new();
    let mut spacing_list: Vec<f64> = Vec::new();
    if let Some(dirs) = &header.space_directions {
        for d in dirs.iter().flatten() {
            let v = to_3d(d, "space directions")?;
            let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            if !(norm > 0.0 && norm.is_finite()) {
                let msg = "a spatial axis has a zero-length direction".to_string();
                return Err(field_error("space directions", format!("{d:?}"), msg));
            }
            columns.push([v[0] / norm, v[1] / norm, v[2] / norm]);
            spacing_list.push(norm);
        }
    } else {
        for (n, &a) in spatial_axes.iter().enumerate() {
            let s = header.spacings.as_ref().map_or(1.0, |s| s[a]);
            if !(s.is_finite() && s != 0.0) {
                let text = header
                    .spacings
                    .as_ref()
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_default();
                let msg = format!("spatial axis {a} needs a finite, non-zero spacing");
                return Err(field_error("spacings", text, msg));
            }
            // A negative spacing flips the axis, as in teem.
            let mut col = [0.0; 3];
            col[n] = s.signum() * flips[n];
            columns.push(col);
            spacing_list.push(s.abs());
        }
    }
    let origin = match &header.space_origin {
        Some(o) => to_3d(o, "space origin")?,
        None => [0.0; 3],
    };

    let mut sizes = [1usize; 3];
    let mut spacing = [1.0f64; 3];
    for (n, &a) in spatial_axes.iter().enumerate() {
        sizes[n] = header.sizes[a];
        spacing[n] = spacing_list[n];
    }
    let direction = complete_basis(&columns)
        .ok_or_else(|| geometry_error(path, "the space directions are parallel".into()))?;

    let measurement_frame = match &header.measurement_frame {
        None => None,
        Some(cols) => {
            if cols.len() != 3 || cols.iter().any(|c| c.len() != 3) {
                let text = format!("{cols:?}");
                let msg = "expected three 3-component vectors".to_string();
                return Err(field_error("measurement frame", text, msg));
            }
            let mut m = [[0.0; 3]; 3];
            for (c, col) in cols.iter().enumerate() {
                for r in 0..3 {
                    m[r][c] = col[r] * flips[r];
                }
            }
            Some(m)
        }
    };

    Ok(Layout {
        sizes,
        channels,
        channel_axis,
        channel_kind,
        spacing,
        origin,
        direction,
        measurement_frame,
        notes,
    })
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn normalized(v: [f64; 3]) -> Option<[f64; 3]> {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    (n > 1e-12).then(|| [v[0] / n, v[1] / n, v[2] / n])
}

/// The direction matrix (columns) from one to three unit columns: missing columns complete a
/// right-handed orthonormal frame.
fn complete_basis(columns: &[[f64; 3]]) -> Option<[[f64; 3]; 3]> {
    let mut cols: Vec<[f64; 3]> = columns.to_vec();
    if cols.len() == 1 {
        let c = cols[0];
        let axis = (0..3).min_by(|&a, &b| c[a].abs().total_cmp(&c[b].abs()))?;
        let mut e = [0.0; 3];
        e[axis] = 1.0;
        let dot = e[0] * c[0] + e[1] * c[1] + e[2] * c[2];
        cols.push(normalized([
            e[0] - dot * c[0],
            e[1] - dot * c[1],
            e[2] - dot * c[2],
        ])?);
    }
    if cols.len() == 2 {
        cols.push(normalized(cross(cols[0], cols[1]))?);
    }
    let mut m = [[0.0; 3]; 3];
    for (c, col) in cols.iter().enumerate() {
        for r in 0..3 {
            m[r][c] = col[r];
        }
    }
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    (det.abs() > 1e-12).then_some(m)
}
