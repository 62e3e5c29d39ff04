//! Isosurfaces, label surfaces in world space, binary STL, and `enamel mesh`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use enamel::io::{write_volume, Volume, Voxels};
use enamel::mesh::{isosurface, label_surface, read_stl, write_stl, Mesh};
use enamel::rng::Rng;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enamel-mesh-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The 4×4×4 grid of −1 with +1 on [1..2]³.
fn small_cube() -> Vec<f32> {
    let mut values = vec![-1.0f32; 64];
    for k in 1..3 {
        for j in 1..3 {
            for i in 1..3 {
                values[(k * 4 + j) * 4 + i] = 1.0;
            }
        }
    }
    values
}

/// Volume enclosed by the surface of a binary field cut halfway along every edge, computed
/// without the mesh: each cube splits into six tetrahedra of volume 1/6 along its main
/// diagonal, one per axis order, and the inside part of a tetrahedron with n inside corners is
/// 0, 1/8, 1/2, 7/8 or 1 of it. Everything outside the grid is outside.
fn enclosed_volume(inside: &[bool], sizes: [usize; 3]) -> f64 {
    let at = |p: [i64; 3]| {
        (0..3).all(|a| p[a] >= 0 && p[a] < sizes[a] as i64)
            && inside[((p[2] as usize * sizes[1]) + p[1] as usize) * sizes[0] + p[0] as usize]
    };
    let fraction = [0.0, 0.125, 0.5, 0.875, 1.0];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut volume = 0.0;
    for z in -1..sizes[2] as i64 {
        for y in -1..sizes[1] as i64 {
            for x in -1..sizes[0] as i64 {
                for order in orders {
                    let mut p = [x, y, z];
                    let mut n = usize::from(at(p));
                    for axis in order {
                        p[axis] += 1;
                        n += usize::from(at(p));
                    }
                    volume += fraction[n] / 6.0;
                }
            }
        }
    }
    volume
}

/// Every vertex's triangles form one fan that closes on itself (a disc around the vertex).
fn is_vertex_manifold(mesh: &Mesh) -> bool {
    let mut links: HashMap<u32, HashMap<u32, u32>> = HashMap::new();
    for t in &mesh.triangles {
        for r in 0..3 {
            let (v, b, c) = (t[r], t[(r + 1) % 3], t[(r + 2) % 3]);
            if links.entry(v).or_default().insert(b, c).is_some() {
                return false;
            }
        }
    }
    links.len() == mesh.vertices.len()
        && links.values().all(|link| {
            let start = *link.keys().next().unwrap();
            let (mut at, mut steps) = (start, 0);
            while let Some(&next) = link.get(&at) {
                steps += 1;
                at = next;
                if at == start || steps > link.len() {
                    break;
                }
            }
            at == start && steps == link.len()
        })
}

fn has_no_degenerate_triangles(mesh: &Mesh) -> bool {
    mesh.normals().iter().all(|n| n.iter().any(|&x| x != 0.0))
}

#[test]
fn cube_of_eight_voxels_gives_a_closed_sphere() {
    let values = small_cube();
    let mesh = isosurface(&values, [4, 4, 4], 0.0);
    assert!(mesh.is_closed());
    assert!(is_vertex_manifold(&mesh));
    assert!(has_no_degenerate_triangles(&mesh));
    assert_eq!(mesh.euler_characteristic(), 2);
    assert_eq!(mesh.bounds(), Some(([0.5; 3], [2.5; 3])));

    let inside: Vec<bool> = values.iter().map(|&v| v > 0.0).collect();
    let expected = enclosed_volume(&inside, [4, 4, 4]);
    let volume = mesh.signed_volume();
    assert!((volume - expected).abs() < 1e-9, "{volume} vs {expected}");
    // The surface is the 2×2×2 box with chamfered edges: less than 8, more than the inner 1.
    assert!(expected > 1.0 && expected < 8.0);
}

#[test]
fn anisotropic_spacing_and_origin_scale_the_world_surface() {
    let labels: Vec<u8> = small_cube()
        .iter()
        .map(|&v| u8::from(v > 0.0) * 7)
        .collect();
    let mut volume = Volume::new([4, 4, 4], Voxels::U8(labels), [0.5, 1.0, 2.0]);
    volume.origin = [10.0, -5.0, 3.0];
    let mesh = label_surface(&volume, 7);

    assert!(mesh.is_closed());
    assert_eq!(mesh.euler_characteristic(), 2);
    let (lo, hi) = mesh.bounds().unwrap();
    assert_eq!(lo, [10.25, -4.5, 4.0]);
    assert_eq!(hi, [11.25, -2.5, 8.0]);

    let index_volume = isosurface(&small_cube(), [4, 4, 4], 0.0).signed_volume();
    assert!((mesh.signed_volume() - index_volume * 0.5 * 1.0 * 2.0).abs() < 1e-4);

    // A rotated frame (i → P, j → −L, k → S; a proper rotation) keeps normals outward.
    volume.direction = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
    volume.spacing = [0.5, 1.0, 3.0];
    let rotated = label_surface(&volume, 7);
    assert!(rotated.is_closed());
    assert!((rotated.signed_volume() - index_volume * 1.5).abs() < 1e-4);
    let (lo, hi) = rotated.bounds().unwrap();
    assert_eq!(lo, [7.5, -4.75, 4.5]);
    assert_eq!(hi, [9.5, -3.75, 10.5]);
}

#[test]
fn random_fields_give_closed_manifold_outward_surfaces() {
    let sizes = [7, 6, 5];
    let n: usize = sizes.iter().product();
    for seed in 0..12u64 {
        let mut rng = Rng::new(seed);

        // Salt-and-pepper binary masks: every ambiguous face and cube configuration occurs.
        let inside: Vec<bool> = (0..n).map(|_| rng.chance(0.5)).collect();
        let values: Vec<f32> = inside.iter().map(|&b| f32::from(u8::from(b))).collect();
        let mesh = isosurface(&values, sizes, 0.5);
        assert!(mesh.is_closed(), "seed {seed}");
        assert!(is_vertex_manifold(&mesh), "seed {seed}");
        assert!(has_no_degenerate_triangles(&mesh), "seed {seed}");
        let expected = enclosed_volume(&inside, sizes);
        assert!(
            (mesh.signed_volume() - expected).abs() < 1e-6,
            "seed {seed}"
        );

        // A blobby field: a few Gaussian bumps plus noise, cut at an arbitrary level.
        let centres: Vec<[f64; 4]> = (0..4)
            .map(|_| {
                [
                    rng.range(0.0, 7.0),
                    rng.range(0.0, 6.0),
                    rng.range(0.0, 5.0),
                    rng.range(1.0, 3.0),
                ]
            })
            .collect();
        let mut blobby = Vec::with_capacity(n);
        for k in 0..sizes[2] {
            for j in 0..sizes[1] {
                for i in 0..sizes[0] {
                    let p = [i as f64, j as f64, k as f64];
                    let bumps: f64 = centres
                        .iter()
                        .map(|c| {
                            let r2: f64 = (0..3).map(|a| (p[a] - c[a]).powi(2)).sum();
                            (-r2 / (2.0 * c[3] * c[3])).exp()
                        })
                        .sum();
                    blobby.push((bumps + rng.symmetric(0.3)) as f32);
                }
            }
        }
        let mesh = isosurface(&blobby, sizes, 0.6);
        assert!(mesh.is_closed(), "blobby seed {seed}");
        assert!(is_vertex_manifold(&mesh), "blobby seed {seed}");
        assert!(has_no_degenerate_triangles(&mesh), "blobby seed {seed}");
        assert!(blobby.iter().all(|&v| v <= 0.6) || mesh.signed_volume() > 0.0);
    }
}

#[test]
fn values_equal_to_the_level_give_no_degenerate_triangles() {
    // Exactly-at-level values put crossings on grid points; they are kept a hair away.
    let values: Vec<f32> = (0..27).map(|n| [0.0, 1.0, 0.0][n % 3]).collect();
    let mesh = isosurface(&values, [3, 3, 3], 0.0);
    assert!(mesh.is_closed());
    assert!(is_vertex_manifold(&mesh));
    assert!(has_no_degenerate_triangles(&mesh));
}

#[test]
fn nothing_above_the_level_writes_an_empty_stl_with_a_warning() {
    let mesh = isosurface(&[-1.0; 64], [4, 4, 4], 0.0);
    assert!(mesh.triangles.is_empty());

    let path = temp_dir("empty").join("tooth_48.stl");
    let summary = write_stl(&path, &mesh, "tooth 48").unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 84);
    assert_eq!(summary.bytes, 84);
    let warning = summary.warning.expect("an empty mesh warns");
    assert!(warning.contains("tooth 48"), "{warning}");

    let stl = read_stl(&path).unwrap();
    assert!(stl.triangles.is_empty() && stl.normals.is_empty());
}

fn box_1x2x3() -> Mesh {
    let vertices = (0..8)
        .map(|n| {
            [
                (n & 1) as f32,
                ((n >> 1) & 1) as f32 * 2.0,
                ((n >> 2) & 1) as f32 * 3.0,
            ]
        })
        .collect();
    let triangles = vec![
        [0, 2, 1],
        [1, 2, 3],
        [4, 5, 6],
        [5, 7, 6],
        [0, 1, 4],
        [1, 5, 4],
        [2, 6, 3],
        [3, 6, 7],
        [0, 4, 2],
        [2, 4, 6],
        [1, 3, 5],
        [3, 7, 5],
    ];
    Mesh {
        vertices,
        triangles,
    }
}

#[test]
fn stl_of_a_cube_is_684_bytes_with_unit_normals_and_reloads() {
    let mesh = box_1x2x3();
    let path = temp_dir("cube").join("cube.stl");
    let summary = write_stl(&path, &mesh, "solid cube").unwrap();
    assert_eq!(summary.warning, None);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 684);
    assert!(!bytes.starts_with(b"solid"));
    assert_eq!(u32::from_le_bytes(bytes[80..84].try_into().unwrap()), 12);

    let stl = read_stl(&path).unwrap();
    assert!(stl.header.contains("solid cube"));
    assert_eq!(stl.triangles.len(), 12);
    for (n, (corners, normal)) in stl.triangles.iter().zip(&stl.normals).enumerate() {
        let expected = mesh.triangles[n].map(|v| mesh.vertices[v as usize]);
        assert_eq!(*corners, expected);
        // Axis-aligned faces: the normal is a unit axis vector pointing away from the centre.
        let length: f32 = normal.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((length - 1.0).abs() < 1e-6);
        let centre = [0.5, 1.0, 1.5];
        let away: f32 = (0..3)
            .map(|a| (corners.iter().map(|c| c[a]).sum::<f32>() / 3.0 - centre[a]) * normal[a])
            .sum();
        assert!(away > 0.0);
        assert_eq!(normal.iter().filter(|x| x.abs() == 1.0).count(), 1);
    }
}

/// A wavy height field of 52 × 64 quads: 6656 triangles.
fn sheet() -> Mesh {
    let (nx, ny) = (53u32, 65u32);
    let vertices = (0..ny)
        .flat_map(|y| (0..nx).map(move |x| [x as f32 * 0.3, y as f32 * 0.7, ((x * y) % 7) as f32]))
        .collect();
    let mut triangles = Vec::new();
    for y in 0..ny - 1 {
        for x in 0..nx - 1 {
            let v = y * nx + x;
            triangles.push([v, v + 1, v + nx + 1]);
            triangles.push([v, v + nx + 1, v + nx]);
        }
    }
    Mesh {
        vertices,
        triangles,
    }
}

#[test]
fn six_thousand_triangles_reload_intact_and_truncation_is_an_error() {
    let mesh = sheet();
    assert_eq!(mesh.triangles.len(), 6656);
    let path = temp_dir("sheet").join("sheet.stl");
    write_stl(&path, &mesh, "sheet").unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 84 + 50 * 6656);

    let stl = read_stl(&path).unwrap();
    assert_eq!(stl.triangles.len(), 6656);
    for (n, t) in mesh.triangles.iter().enumerate() {
        assert_eq!(
            stl.triangles[n],
            t.map(|v| mesh.vertices[v as usize]),
            "triangle {n}"
        );
    }
    assert_eq!(stl.normals, mesh.normals());

    let truncated = path.with_file_name("truncated.stl");
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    let err = read_stl(&truncated).unwrap_err().to_string();
    assert!(err.contains("truncated.stl"), "{err}");
    assert!(err.contains("332884") && err.contains("332877"), "{err}");

    let stub = path.with_file_name("stub.stl");
    std::fs::write(&stub, &bytes[..50]).unwrap();
    let err = read_stl(&stub).unwrap_err().to_string();
    assert!(
        err.contains("stub.stl") && err.contains("50 bytes"),
        "{err}"
    );
}

#[test]
fn mesh_command_writes_one_closed_stl_per_label() {
    let dir = temp_dir("cli");
    let sizes = [8, 7, 6];
    let mut labels = vec![0u16; 8 * 7 * 6];
    for k in 1..4 {
        for j in 1..5 {
            for i in 1..3 {
                labels[(k * 7 + j) * 8 + i] = 11;
            }
            for i in 5..8 {
                labels[(k * 7 + j) * 8 + i] = 21;
            }
        }
    }
    let mut volume = Volume::new(sizes, Voxels::U16(labels), [0.4, 0.4, 0.8]);
    volume.origin = [-3.0, 2.0, 40.0];
    let path = dir.join("labels.nrrd");
    write_volume(&path, &volume).unwrap();
    let out = dir.join("stl");

    let result = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args([
            "mesh",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["tooth_11.stl", "tooth_21.stl"]);
    for label in [11, 21] {
        let expected = label_surface(&volume, label);
        let stl = read_stl(&out.join(format!("tooth_{label}.stl"))).unwrap();
        assert_eq!(stl.triangles.len(), expected.triangles.len());
        let line = format!(
            "tooth_{label}.stl: {} triangles, closed yes",
            expected.triangles.len()
        );
        assert!(stdout.contains(&line), "{stdout}");
    }
    // Label 21 touches the i border: its surface still closes, half a voxel beyond it.
    let (_, hi) = label_surface(&volume, 21).bounds().unwrap();
    assert!((hi[0] - (-3.0 + 7.5 * 0.4)).abs() < 1e-5);

    let listed = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args([
            "mesh",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--labels",
            "21,31",
        ])
        .output()
        .unwrap();
    assert!(listed.status.success());
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("tooth_31.stl: 0 triangles, empty"), "{text}");
    assert!(text.contains("label 31: no surface"), "{text}");
    assert_eq!(
        std::fs::metadata(out.join("tooth_31.stl")).unwrap().len(),
        84
    );
}
