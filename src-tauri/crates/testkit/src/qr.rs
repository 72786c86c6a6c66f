//! Decode the QR code an SVG from the `qrcode` crate draws (a background rect and one path of
//! `M{x} {y}h{w}v{h}H{x}V{y}` module runs): rasterise the dark rectangles and read the bitmap with
//! `rqrr`, as a phone's camera would read the screen.

/// The text the QR code in `svg` encodes.
pub fn decode_svg(svg: &str) -> Result<String, String> {
    let (w, h) = size(svg).ok_or("no width/height on the <svg>")?;
    let d = path_data(svg).ok_or("no <path d=…> in the svg")?;
    let mut dark = vec![false; w * h];
    for (x, y, rw, rh) in rects(d)? {
        for yy in y..(y + rh).min(h) {
            for xx in x..(x + rw).min(w) {
                dark[yy * w + xx] = true;
            }
        }
    }
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(
            w,
            h,
            |x, y| if dark[y * w + x] { 0 } else { 255 },
        );
    let grids = img.detect_grids();
    let grid = grids.first().ok_or("no QR code found in the image")?;
    let (_meta, text) = grid.decode().map_err(|e| format!("QR decode: {e:?}"))?;
    Ok(text)
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

fn size(svg: &str) -> Option<(usize, usize)> {
    let start = svg.find("<svg")?;
    let tag = &svg[start..start + svg[start..].find('>')?];
    Some((
        attr(tag, "width")?.parse().ok()?,
        attr(tag, "height")?.parse().ok()?,
    ))
}

fn path_data(svg: &str) -> Option<&str> {
    let start = svg.find("<path")?;
    let tag = &svg[start..start + svg[start..].find("/>")?];
    attr(tag, "d")
}

/// `M{x} {y}h{w}v{h}H{x}V{y}` runs → (x, y, w, h).
fn rects(d: &str) -> Result<Vec<(usize, usize, usize, usize)>, String> {
    let mut out = Vec::new();
    for run in d.split('M').filter(|r| !r.is_empty()) {
        let num = |after: char, s: &str| -> Option<usize> {
            let i = s.find(after)? + 1;
            let end = s[i..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(s.len(), |e| i + e);
            s[i..end].parse().ok()
        };
        let bad = || format!("unexpected path run {run:?}");
        let (xy, rest) = run.split_once('h').ok_or_else(bad)?;
        let (x, y) = xy.split_once(' ').ok_or_else(bad)?;
        let x: usize = x.trim().parse().map_err(|_| bad())?;
        let y: usize = y.trim().parse().map_err(|_| bad())?;
        let w: usize = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let h = num('v', rest).ok_or_else(bad)?;
        out.push((x, y, w, h));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_back_what_the_qrcode_crate_draws() {
        let svg = voicewall_core::qr::svg("http://192.168.1.2:8787/join/main?t=abc").unwrap();
        assert_eq!(
            super::decode_svg(&svg).unwrap(),
            "http://192.168.1.2:8787/join/main?t=abc"
        );
    }
}
