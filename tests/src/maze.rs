//! Generated mazes for path tests and benchmarks: large maps with long
//! corridors, loops and open rooms, in the Moving AI `.map` format that
//! `rampart path` reads.

/// xorshift64*: deterministic maps without extra dependencies.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// A `size` x `size` walkability mask (row-major): a randomized
/// depth-first-search perfect maze on the odd cells, with extra walls knocked
/// out (loops) and rectangular rooms cleared (open areas where diagonal moves
/// and corner rules matter). Its long winding corridors are the worst case
/// for a plain A*, which expands every cell of every dead end it tries.
///
/// # Panics
/// If `size` is below 32 (the rooms would not fit).
pub fn maze(size: usize, rng: &mut Rng) -> Vec<bool> {
    assert!(size >= 32, "maze size {size} below 32");
    let mut open = vec![false; size * size];
    let cells = (size - 1) / 2; // maze cells per side, at odd coordinates
    let at = |cx: usize, cy: usize| (2 * cy + 1) * size + 2 * cx + 1;
    let mut visited = vec![false; cells * cells];
    let mut stack = vec![(0usize, 0usize)];
    visited[0] = true;
    open[at(0, 0)] = true;
    while let Some(&(cx, cy)) = stack.last() {
        let mut choices = [(0usize, 0usize); 4];
        let mut count = 0;
        for (dx, dy) in [(1isize, 0isize), (-1, 0), (0, 1), (0, -1)] {
            let (nx, ny) = (cx as isize + dx, cy as isize + dy);
            if nx >= 0 && ny >= 0 && (nx as usize) < cells && (ny as usize) < cells {
                let (nx, ny) = (nx as usize, ny as usize);
                if !visited[ny * cells + nx] {
                    choices[count] = (nx, ny);
                    count += 1;
                }
            }
        }
        if count == 0 {
            stack.pop();
            continue;
        }
        let (nx, ny) = choices[rng.below(count)];
        visited[ny * cells + nx] = true;
        open[at(nx, ny)] = true;
        open[(cy + ny + 1) * size + cx + nx + 1] = true; // the wall between
        stack.push((nx, ny));
    }
    // Knock out some inner walls and pillars.
    for y in 1..size - 2 {
        for x in 1..size - 2 {
            if !open[y * size + x] && rng.below(12) == 0 {
                open[y * size + x] = true;
            }
        }
    }
    // Clear some rooms.
    for _ in 0..150 {
        let (w, h) = (3 + rng.below(12), 3 + rng.below(12));
        let (x0, y0) = (1 + rng.below(size - 3 - w), 1 + rng.below(size - 3 - h));
        for y in y0..y0 + h {
            open[y * size + x0..y * size + x0 + w].fill(true);
        }
    }
    open
}

/// `open` (a `size` x `size` mask) as a Moving AI `.map` file.
pub fn movingai_text(open: &[bool], size: usize) -> String {
    let mut text = format!("type octile\nheight {size}\nwidth {size}\nmap\n");
    for row in open.chunks(size) {
        text.extend(row.iter().map(|&o| if o { '.' } else { '@' }));
        text.push('\n');
    }
    text
}

/// `count` queries between open cells of `open` chosen with `rng`, as
/// (start, goal) row-major indices.
pub fn random_queries(open: &[bool], count: usize, rng: &mut Rng) -> Vec<(usize, usize)> {
    let cells: Vec<usize> = (0..open.len()).filter(|&i| open[i]).collect();
    (0..count)
        .map(|_| (cells[rng.below(cells.len())], cells[rng.below(cells.len())]))
        .collect()
}
