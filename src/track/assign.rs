//! Gated assignment of candidates to tracks: the gated pairs are split into independent clusters
//! (tracks and candidates linked by a gate); each cluster is solved exactly (Kuhn-Munkres) when
//! small, greedily by cost when large. Leaving track `i` unassigned costs `miss_cost[i]`, so a
//! track is not given a poor candidate merely to assign more pairs.

use pathfinding::prelude::{Matrix, kuhn_munkres};

/// Largest cluster (tracks + candidates) solved exactly; larger ones are solved greedily.
const MAX_EXACT: usize = 40;

/// One gated pair and its cost (lower is better).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair {
    pub track: usize,
    pub cand: usize,
    pub cost: f64,
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// The candidate assigned to each of the tracks (or `None`), minimising the total cost where
/// leaving track `i` unassigned costs `miss_cost[i]`.
pub(crate) fn assign(pairs: &[Pair], miss_cost: &[f64], n_cands: usize) -> Vec<Option<usize>> {
    let n_tracks = miss_cost.len();
    let mut out = vec![None; n_tracks];
    if pairs.is_empty() {
        return out;
    }
    // Clusters over tracks [0, n_tracks) and candidates [n_tracks, n_tracks + n_cands).
    let mut parent: Vec<usize> = (0..n_tracks + n_cands).collect();
    for p in pairs {
        let (a, b) = (
            find(&mut parent, p.track),
            find(&mut parent, n_tracks + p.cand),
        );
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut clusters: std::collections::BTreeMap<usize, Vec<Pair>> = Default::default();
    for p in pairs {
        let root = find(&mut parent, p.track);
        clusters.entry(root).or_default().push(*p);
    }
    for (_, cl) in clusters {
        let mut tracks: Vec<usize> = cl.iter().map(|p| p.track).collect();
        tracks.sort_unstable();
        tracks.dedup();
        let mut cands: Vec<usize> = cl.iter().map(|p| p.cand).collect();
        cands.sort_unstable();
        cands.dedup();
        if tracks.len() == 1 || cands.len() == 1 || tracks.len() + cands.len() > MAX_EXACT {
            greedy(&cl, &mut out);
        } else {
            exact(&cl, &tracks, &cands, miss_cost, &mut out);
        }
    }
    out
}

/// Cheapest pairs first.
fn greedy(cl: &[Pair], out: &mut [Option<usize>]) {
    let mut sorted = cl.to_vec();
    sorted.sort_by(|a, b| {
        a.cost
            .total_cmp(&b.cost)
            .then(a.track.cmp(&b.track))
            .then(a.cand.cmp(&b.cand))
    });
    let mut used: Vec<usize> = Vec::new();
    for p in sorted {
        if out[p.track].is_none() && !used.contains(&p.cand) {
            out[p.track] = Some(p.cand);
            used.push(p.cand);
        }
    }
}

/// Kuhn-Munkres on rows = tracks, columns = candidates + one "missed" column per track.
fn exact(
    cl: &[Pair],
    tracks: &[usize],
    cands: &[usize],
    miss_cost: &[f64],
    out: &mut [Option<usize>],
) {
    const SCALE: f64 = 1000.0;
    let forbidden: i64 = -(1i64 << 40);
    let (nr, nc) = (tracks.len(), cands.len() + tracks.len());
    let mut w = Matrix::new(nr, nc, forbidden);
    for p in cl {
        let r = tracks.binary_search(&p.track).expect("track in cluster");
        let c = cands.binary_search(&p.cand).expect("candidate in cluster");
        w[(r, c)] = -(p.cost.min(miss_cost[p.track]) * SCALE).round() as i64;
    }
    for (r, &t) in tracks.iter().enumerate() {
        w[(r, cands.len() + r)] = -(miss_cost[t] * SCALE).round() as i64;
    }
    let (_, cols) = kuhn_munkres(&w);
    for (r, &c) in cols.iter().enumerate() {
        if c < cands.len() && w[(r, c)] != forbidden {
            out[tracks[r]] = Some(cands[c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_greedy_on_a_crossing() {
        // Greedy would give track 0 its cheapest (cand 0) and leave track 1 with nothing.
        let pairs = [
            Pair {
                track: 0,
                cand: 0,
                cost: 1.0,
            },
            Pair {
                track: 0,
                cand: 1,
                cost: 2.0,
            },
            Pair {
                track: 1,
                cand: 0,
                cost: 1.5,
            },
        ];
        let a = assign(&pairs, &[10.0, 10.0], 2);
        assert_eq!(a, vec![Some(1), Some(0)]);
        let mut g = vec![None; 2];
        greedy(&pairs, &mut g);
        assert_eq!(g, vec![Some(0), None]);
    }

    #[test]
    fn independent_clusters_and_unassigned() {
        let pairs = [
            Pair {
                track: 0,
                cand: 2,
                cost: 3.0,
            },
            Pair {
                track: 2,
                cand: 0,
                cost: 1.0,
            },
            Pair {
                track: 2,
                cand: 1,
                cost: 0.5,
            },
            Pair {
                track: 3,
                cand: 1,
                cost: 0.7,
            },
        ];
        let a = assign(&pairs, &[10.0; 4], 3);
        assert_eq!(a[0], Some(2));
        assert_eq!(a[1], None);
        // Track 2 takes cand 0 so track 3 can have cand 1 (total 1.7 < 0.5 + miss).
        assert_eq!(a[2], Some(0));
        assert_eq!(a[3], Some(1));
        // With a cheap miss for track 3, track 2 keeps its best candidate instead.
        let a = assign(&pairs, &[10.0, 10.0, 10.0, 0.6], 3);
        assert_eq!((a[2], a[3]), (Some(1), None));
    }
}
