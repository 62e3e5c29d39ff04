//! NRRD reading to the specification: the cases of the volume I/O issue, on files made here.

use std::path::{Path, PathBuf};

use enamel::io::nrrd::{self, read_nrrd};
use enamel::io::{read_volume, IoError, Voxels};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("enamel-io-nrrd-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, header: &str, payload: &[u8]) {
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(payload);
    std::fs::write(path, bytes).unwrap();
}

fn be_floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// 3 channels on a 2×2×2 grid: channel c of voxel n holds 100·c + n + 0.5.
fn channel_value(c: usize, n: usize) -> f32 {
    100.0 * c as f32 + n as f32 + 0.5
}

#[test]
fn four_d_big_endian_vector_first() {
    let dir = tempdir("vec-first");
    let mut values = Vec::new();
    for n in 0..8 {
        for c in 0..3 {
            values.push(channel_value(c, n));
        }
    }
    let header =
        "NRRD0004\ntype: float\ndimension: 4\nsizes: 3 2 2 2\nspace: left-posterior-superior\n\
                  space directions: none (0.75,0,0) (0,0.75,0) (0,0,0.75)\n\
                  kinds: vector domain domain domain\nendian: big\nencoding: raw\n\n";
    let path = dir.join("v.nrrd");
    write(&path, header, &be_floats(&values));
    let v = read_volume(&path).unwrap();
    assert_eq!(v.sizes, [2, 2, 2]);
    assert_eq!(v.channels, 3);
    assert_eq!(v.spacing, [0.75; 3]);
    assert_eq!(v.voxels, Voxels::F32(values));
}

#[test]
fn four_d_big_endian_vector_last() {
    let dir = tempdir("vec-last");
    // In the file the channel axis is slowest: all of channel 0, then 1, then 2.
    let mut file_order = Vec::new();
    for c in 0..3 {
        for n in 0..8 {
            file_order.push(channel_value(c, n));
        }
    }
    let header =
        "NRRD0004\ntype: float\ndimension: 4\nsizes: 2 2 2 3\nspace: left-posterior-superior\n\
                  space directions: (0.75,0,0) (0,0.75,0) (0,0,0.75) none\n\
                  kinds: domain domain domain vector\nendian: big\nencoding: raw\n\n";
    let path = dir.join("v.nrrd");
    write(&path, header, &be_floats(&file_order));
    let v = read_volume(&path).unwrap();
    assert_eq!(v.sizes, [2, 2, 2]);
    assert_eq!(v.channels, 3);
    assert_eq!(v.spacing, [0.75; 3]);
    let Voxels::F32(got) = &v.voxels else {
        panic!("expected float")
    };
    for n in 0..8 {
        for c in 0..3 {
            assert_eq!(got[n * 3 + c], channel_value(c, n), "voxel {n} channel {c}");
        }
    }
}

fn detached_short(skip: &str) -> Vec<i16> {
    let dir = tempdir(&format!("skip{skip}"));
    let mut data = vec![0xAB, 0xCD, 0xEF, 0x01, 0x23];
    data.extend((0..24i16).flat_map(|v| v.to_le_bytes()));
    std::fs::write(dir.join("values.raw"), data).unwrap();
    let header = format!(
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 2 3 4\nendian: little\nencoding: raw\n\
         byte skip: {skip}\ndata file: values.raw\n"
    );
    std::fs::write(dir.join("v.nhdr"), header).unwrap();
    let v = read_volume(&dir.join("v.nhdr")).unwrap();
    assert_eq!(v.sizes, [2, 3, 4]);
    match v.voxels {
        Voxels::I16(x) => x,
        other => panic!("expected int16, got {}", other.type_name()),
    }
}

#[test]
fn detached_byte_skip_minus_one_and_five() {
    let expected: Vec<i16> = (0..24).collect();
    assert_eq!(detached_short("-1"), expected);
    assert_eq!(detached_short("5"), expected);
}

#[test]
fn space_directions_give_spacing_and_world_positions() {
    let dir = tempdir("geometry");
    let header = "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 3 4\nspace: LPS\n\
                  space directions: (0,2,0) (3,0,0) (0,0,4)\nspace origin: (10,20,30)\n\
                  encoding: raw\n\n";
    let path = dir.join("g.nrrd");
    write(&path, header, &[7u8; 24]);
    let v = read_volume(&path).unwrap();
    assert_eq!(v.spacing, [2.0, 3.0, 4.0]);
    assert_eq!(v.index_to_world([1.0, 0.0, 0.0]), [10.0, 22.0, 30.0]);
    assert_eq!(v.index_to_world([0.0, 1.0, 0.0]), [13.0, 20.0, 30.0]);
    assert_eq!(v.index_to_world([0.0, 0.0, 1.0]), [10.0, 20.0, 34.0]);
}

#[test]
fn spacings_without_space_give_the_spacing() {
    let dir = tempdir("spacings");
    let header = "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 3 4\nspacings: 0.5 1.25 3\n\
                  encoding: raw\n\n";
    let path = dir.join("s.nrrd");
    write(&path, header, &[1u8; 24]);
    let v = read_volume(&path).unwrap();
    assert_eq!(v.spacing, [0.5, 1.25, 3.0]);
    assert_eq!(v.index_to_world([1.0, 1.0, 1.0]), [0.5, 1.25, 3.0]);
}

#[test]
fn ras_space_is_converted_to_lps() {
    let dir = tempdir("ras");
    let header =
        "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 1 1 2\nspace: right-anterior-superior\n\
                  space directions: (1,0,0) (0,2,0) (0,0,3)\nspace origin: (5,6,7)\n\
                  measurement frame: (1,0,0) (0,1,0) (0,0,1)\nencoding: raw\n\n";
    let path = dir.join("r.nrrd");
    write(&path, header, &[1, 2]);
    let n = read_nrrd(&path).unwrap();
    assert_eq!(n.volume.origin, [-5.0, -6.0, 7.0]);
    assert_eq!(
        n.volume.direction,
        [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    );
    assert_eq!(n.volume.spacing, [1.0, 2.0, 3.0]);
    assert_eq!(
        n.measurement_frame,
        Some([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    );
    assert!(n.notes[0].contains("converted to LPS"), "{:?}", n.notes);
}

#[test]
fn gzip_after_nine_kib_of_comments_and_raw_newline_bytes() {
    let dir = tempdir("long-header");
    let mut header = String::from("NRRD0004\n");
    while header.len() < 9 * 1024 {
        header.push_str("# a comment line that makes the header longer than any fixed buffer\n");
    }
    header.push_str("type: uint8\ndimension: 3\nsizes: 4 2 1\nencoding: gzip\n\n");
    let values: Vec<u8> = vec![0x0A, 0x0D, 0x0A, 0x00, 0xFF, 0x0A, 0x0A, 0x20];
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &values).unwrap();
    let path = dir.join("long.nrrd");
    write(&path, &header, &enc.finish().unwrap());
    assert_eq!(
        read_volume(&path).unwrap().voxels,
        Voxels::U8(values.clone())
    );

    // The same bytes raw: newlines in the payload pass unchanged.
    let raw_header = header.replace("encoding: gzip", "encoding: raw");
    write(&path, &raw_header, &values);
    assert_eq!(read_volume(&path).unwrap().voxels, Voxels::U8(values));
}

#[test]
fn line_skip_ascii_hex_and_bzip2() {
    let dir = tempdir("encodings");
    let ascii = "NRRD0004\ntype: int\ndimension: 2\nsizes: 3 2\nencoding: ascii\nline skip: 2\n\n\
                 junk line\nanother\n-1 2, 3\n 4 -5 600000\n";
    let path = dir.join("a.nrrd");
    write(&path, ascii, b"");
    let v = read_volume(&path).unwrap();
    assert_eq!(v.sizes, [3, 2, 1]);
    assert_eq!(v.voxels, Voxels::I32(vec![-1, 2, 3, 4, -5, 600000]));

    let hex = "NRRD0004\ntype: ushort\ndimension: 1\nsizes: 3\nendian: big\nencoding: hex\n\n";
    write(&path, hex, b"0102 a0B0\nFFFF\n");
    let v = read_volume(&path).unwrap();
    assert_eq!(v.sizes, [3, 1, 1]);
    assert_eq!(v.voxels, Voxels::U16(vec![0x0102, 0xA0B0, 0xFFFF]));

    let values: Vec<u8> = (0u8..24)
        .flat_map(|v| (v as f64 * 0.25).to_le_bytes())
        .collect();
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    std::io::Write::write_all(&mut enc, &values).unwrap();
    let bz =
        "NRRD0004\ntype: double\ndimension: 3\nsizes: 2 3 4\nendian: little\nencoding: bz2\n\n";
    write(&path, bz, &enc.finish().unwrap());
    let v = read_volume(&path).unwrap();
    assert_eq!(
        v.voxels,
        Voxels::F64((0..24).map(|v| v as f64 * 0.25).collect())
    );
}

#[test]
fn detached_list_and_pattern_data_files() {
    let dir = tempdir("multi");
    for k in 0..3u8 {
        std::fs::write(dir.join(format!("slice{k:03}.raw")), [k * 10, k * 10 + 1]).unwrap();
    }
    let list = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 1 3\nencoding: raw\n\
                data file: LIST 2\nslice000.raw\nslice001.raw\nslice002.raw\n";
    std::fs::write(dir.join("list.nhdr"), list).unwrap();
    let expected = Voxels::U8(vec![0, 1, 10, 11, 20, 21]);
    assert_eq!(
        read_volume(&dir.join("list.nhdr")).unwrap().voxels,
        expected
    );

    let pattern = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 1 3\nencoding: raw\n\
                   data file: slice%03d.raw 0 2 1 2\n";
    std::fs::write(dir.join("pattern.nhdr"), pattern).unwrap();
    assert_eq!(
        read_volume(&dir.join("pattern.nhdr")).unwrap().voxels,
        expected
    );

    let backwards = pattern.replace("0 2 1 2", "2 0 -1 2");
    std::fs::write(dir.join("back.nhdr"), backwards).unwrap();
    let reversed = Voxels::U8(vec![20, 21, 10, 11, 0, 1]);
    assert_eq!(
        read_volume(&dir.join("back.nhdr")).unwrap().voxels,
        reversed
    );
}

#[test]
fn key_values_are_kept_and_comments_ignored() {
    let dir = tempdir("kv");
    let header = "NRRD0005\n# comment\ntype: int8\ndimension: 3\nsizes: 1 1 1\nencoding: raw\n\
                  modality:=CT\nnote:=two\\nlines\ncontent: a test\n\n";
    let path = dir.join("kv.nrrd");
    write(&path, header, &[0xFF]);
    let n = read_nrrd(&path).unwrap();
    assert_eq!(n.volume.voxels, Voxels::I8(vec![-1]));
    let kv = vec![
        ("modality".to_string(), "CT".to_string()),
        ("note".into(), "two\nlines".into()),
    ];
    assert_eq!(n.volume.key_values, kv);
    assert_eq!(n.content.as_deref(), Some("a test"));

    let out = dir.join("out.nrrd");
    nrrd::write_nrrd(&out, &n, &nrrd::WriteOptions::default()).unwrap();
    let text = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("modality:=CT\n") && text.contains("note:=two\\nlines\n"),
        "{text}"
    );
    assert_eq!(read_nrrd(&out).unwrap().volume.key_values, kv);
}

fn read_err(header: &str, payload: &[u8]) -> IoError {
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(payload);
    nrrd::read_from_bytes(&bytes, None).expect_err("the reader accepted a bad file")
}

#[test]
fn bad_headers_name_the_field_and_value() {
    let base = "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n";
    let err = read_err(&format!("{base}colour: blue\n\n"), &[0; 8]).to_string();
    assert!(
        err.contains("unknown field `colour`") && err.contains("blue"),
        "{err}"
    );

    let err = read_err("P6\n2 2\n255\n", &[]).to_string();
    assert!(
        err.contains("not a NRRD file") && err.contains("P6"),
        "{err}"
    );

    let err = read_err(&base.replace("uint8", "complex"), &[]).to_string();
    assert!(err.contains("`type`") && err.contains("complex"), "{err}");

    let err = read_err(&base.replace("2 2 2", "2 2 -2"), &[]).to_string();
    assert!(err.contains("`sizes`") && err.contains("2 2 -2"), "{err}");

    let err = read_err(&format!("{base}sizes: 1 1 1\n\n"), &[]).to_string();
    assert!(err.contains("`sizes` is given twice"), "{err}");

    let err = read_err(&base.replace("type: uint8", "type: short"), b"\n").to_string();
    assert!(err.contains("`endian` is missing"), "{err}");

    let err = read_err(
        &format!("{base}space directions: (1,0,0) (2,0,0) (0,0,0)\n\n"),
        &[0; 8],
    );
    assert!(err.to_string().contains("zero-length"), "{err}");
}

#[test]
fn data_length_mismatches_are_errors() {
    let base =
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 2 2 2\nendian: little\nencoding: raw\n\n";
    let err = read_err(base, &[0; 15]).to_string();
    assert!(
        err.contains("hold 15 bytes") && err.contains("need 16"),
        "{err}"
    );
    let err = read_err(base, &[0; 17]).to_string();
    assert!(err.contains("hold 17 bytes"), "{err}");

    // A truncated gzip stream.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &[1u8; 16]).unwrap();
    let gz = enc.finish().unwrap();
    let err = read_err(&base.replace("raw", "gzip"), &gz[..gz.len() / 2]);
    assert!(
        matches!(err, IoError::Decode { .. } | IoError::DataLength { .. }),
        "{err}"
    );
}

#[test]
fn absurd_sizes_fail_before_allocating() {
    // 10^12 voxels of double: 8 TB claimed, 16 bytes present.
    let h = "NRRD0004\ntype: double\ndimension: 3\nsizes: 10000 10000 10000\nendian: little\n\
             encoding: raw\n\n";
    assert!(matches!(read_err(h, &[0; 16]), IoError::TooLarge { .. }));

    // Under the limit but far more than the file holds.
    let h = "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 1000 1000 1000\nencoding: raw\n\n";
    let err = read_err(h, &[0; 16]).to_string();
    assert!(
        err.contains("hold 16 bytes") && err.contains("need 1000000000"),
        "{err}"
    );

    // Overflowing usize.
    let h = format!(
        "NRRD0004\ntype: uint8\ndimension: 3\nsizes: {m} {m} {m}\nencoding: raw\n\n",
        m = usize::MAX
    );
    assert!(matches!(read_err(&h, &[0; 16]), IoError::TooLarge { .. }));

    // A compression bomb: 64 MiB of zeros claimed as 1 MiB stops at the cap.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &vec![0u8; 64 << 20]).unwrap();
    let bomb = enc.finish().unwrap();
    let h = "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 1024 1024 1\nencoding: gzip\n\n";
    let err = read_err(h, &bomb).to_string();
    assert!(
        err.contains("hold 1048577 bytes") && err.contains("need 1048576"),
        "{err}"
    );
}

#[test]
fn axes_that_cannot_be_channels_are_errors() {
    let h = "NRRD0004\ntype: uint8\ndimension: 4\nsizes: 2 2 2 2\nencoding: raw\n\n";
    let err = read_err(h, &[0; 16]).to_string();
    assert!(err.contains("channel axis"), "{err}");

    let h =
        "NRRD0004\ntype: uint8\ndimension: 4\nsizes: 2 2 2 2\nkinds: vector list domain domain\n\
             encoding: raw\n\n";
    let err = read_err(h, &[0; 16]).to_string();
    assert!(err.contains("at most one channel axis"), "{err}");

    let h = "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 2\nspace: LPS\n\
             space directions: (1,0,0) (0,1,0) (0,0,1)\nkinds: domain domain RGB-color\n\
             encoding: raw\n\n";
    let err = read_err(h, &[0; 8]).to_string();
    assert!(
        err.contains("axis 2 has a space direction but a non-spatial kind"),
        "{err}"
    );

    // A kind decides without space directions: a 2-D RGB image has 3 channels.
    let h = "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 3 2 1\nkinds: RGB-color domain domain\n\
             encoding: raw\n\n";
    let bytes = [h.as_bytes(), &[1, 2, 3, 4, 5, 6]].concat();
    let v = nrrd::read_from_bytes(&bytes, None).unwrap().volume;
    assert_eq!((v.sizes, v.channels), ([2, 1, 1], 3));
}
