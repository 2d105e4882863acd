"""Stake-weighted endorsement: "orgs holding >= num/den of the stake" as Fabric policies, exact and compact.

Orgs of equal stake are interchangeable, so the rule only depends on how many orgs of each stake
class endorse. It is compiled into nested threshold gates (Fabric's ``NOutOf``): with the classes
nested in some order, the policy of classes j.. needing stake R is

    OR over c = 0..n_j of  AND( OutOf(c, class j), policy of classes j+1.. needing R - c*s_j )

keeping only the counts c whose remainder is a different rule than for c - 1 and stopping at the
first c that needs nothing more. Where only *how many* orgs of classes j.. sign decides whether they
hold R -- no count s reaches R with the s heaviest of their orgs and misses it with the s lightest --
the whole rest is one ``OutOf(k, classes j..)`` (the last class always is: ``OutOf(ceil(R/s), class)``);
close stakes (97/101/103/107) fold most of the nesting away that way. Where any k of their orgs hold
R but fewer may too, ``OutOf(k, classes j..)`` is added as a cover when that is smaller, and the
branches under it need only be exact for sets of fewer than k orgs. Equal stakes collapse to one
``OutOf``; for 3 equal orgs at 2/3 it is ``OutOf(2,'A.peer','B.peer','C.peer')``.
It is exactly the stake rule: every remainder is monotone, so a set of orgs satisfies the branch of
its own count in class j iff its other orgs hold the remainder, and fails every branch otherwise.

With four classes, banded forms are tried too: split the classes in two pairs; the pair not
enumerated can only hold certain stakes, so the count vectors of the other pair fall into bands by
the least of those stakes they leave to it, and the policy is OR over bands of AND(that pair is at
least one of the band's minimal vectors, the other holds the stake the band leaves). Round stakes
(300/400/500/600) make wide bands, each band's remainder written once instead of once per count
vector: 31 KB where the best nesting needs 75 KB. Bands also go in runs: in a run, a band asks the
other pair only for what its stake adds to the next band's -- the count vectors holding exactly that
much, often one -- and in exchange its own side also accepts the vectors of the bands before it in
the run; the runs are chosen by dynamic programming. Uneven stakes (379/479/552/658) make narrow
bands with large remainders, and the increments take a 67 KB banded form to 48 KB (:func:`_banded`).

Of the nesting orders (all of them up to 4 classes; largest and smallest stake first beyond) and the
banded forms the smallest envelope is kept, ties by policy string size then by form: deterministic
for a given stake vector. Fabric evaluates a gate by trying each rule on the identities not yet
used and keeping the identities of the rules that passed; an AND here only joins gates over
disjoint classes, so that greedy evaluation gives the boolean answer (``envelope_satisfied``
follows Fabric's evaluator).

It is emitted as SignaturePolicyEnvelope bytes -- the policy Fabric keeps and evaluates, both as the
chaincode definition's validation parameter and as key-level (state-based) endorsement -- which must
stay under :data:`MAX_POLICY_BYTES`, and as the same policy in Fabric's text syntax (``OutOf(k,
'A.peer', ...)``, ``AND``/``OR`` where k is all or one), for people and for ``policydsl``, about 3.5
times longer. Where no form fits (many distinct stakes), compiling refuses with :class:`PolicyError`
and the contract refuses the stake change that asked for it.
Integer arithmetic only; identities, classes and vectors in canonical order.

The minimal-winning-coalition form it replaced (C(n, k) clauses) is kept in the tests, as the
reference they compare against (tests/chaincode/policy_reference.py).
"""
from __future__ import annotations

import hashlib
from bisect import bisect_left
from itertools import combinations, permutations, product
from typing import Callable, Iterable, Iterator, Sequence, Union

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2

from fedfabric_protocol.stakerule import stake_classes

MAX_POLICY_BYTES = 64 * 1024   # SignaturePolicyEnvelope bytes
ENVELOPE_REF_BYTES = 4         # the least one SignedBy rule costs in an envelope (tag, length, tag, index)
ALL_ORDERS_MAX_CLASSES = 4     # up to this many stake classes every nesting order is tried
BAND_MAX_CLASSES = 4           # up to this many stake classes the banded forms are tried too
BAND_MAX_VECTORS = 4096        # count vectors a banded form's side may have
BAND_MAX_REST = 65536          # count vectors the other classes of a banded form may have
BAND_MAX_RUN = 16              # bands in one run of a banded form (longer ones gain nothing seen)
MAX_VECTORS = 1024             # minimal count vectors listed in the record
MAX_PATHS = 65536              # nested-form paths read to find them
ROLE = "peer"

# A policy term: an MSP id (a signature of that org's peer) or (n, children): at least n of children.
Term = Union[str, tuple]


class PolicyError(ValueError):
    """The stake vector or threshold cannot be compiled."""


class _TooLarge(Exception):
    pass


_TOO_BIG = ("too big",)   # a node of the nested form whose policy alone has more references than fit


def _check(stakes: dict[str, int], num: int, den: int) -> int:
    if den <= 0 or num <= 0 or num > den:
        raise PolicyError(f"threshold {num}/{den} must be in (0, 1]")
    if any(int(s) < 0 for s in stakes.values()):
        raise PolicyError("stakes must not be negative")
    total = sum(int(s) for s in stakes.values())
    if total <= 0:
        raise PolicyError("total stake must be positive")
    return total


# ---- terms
def gate(n: int, children: Sequence[Term]) -> Term:
    """At least ``n`` of ``children``; nested ANDs into an AND and ORs into an OR are spliced."""
    kids = list(children)
    if n == len(kids) or n == 1:
        flat: list[Term] = []
        for c in kids:
            same = isinstance(c, tuple) and len(c[1]) > 1 and (c[0] == len(c[1]) if n == len(kids) else c[0] == 1)
            flat.extend(c[1] if same else [c])
        kids, n = flat, (len(flat) if n == len(kids) else 1)
    if len(kids) == 1 and n == 1:
        return kids[0]
    return (n, tuple(kids))


def to_string(term: Term, role: str = ROLE) -> str:
    """Lifecycle signature policy syntax: ``'M.peer'``, ``AND(..)``, ``OR(..)``, ``OutOf(n, ..)``."""
    if isinstance(term, str):
        return f"'{term}.{role}'"
    n, kids = term
    inner = ",".join(to_string(k, role) for k in kids)
    if n == len(kids):
        return f"AND({inner})"
    if n == 1:
        return f"OR({inner})"
    return f"OutOf({n},{inner})"


def _principal(msp_id: str) -> msp_principal_pb2.MSPPrincipal:
    role = msp_principal_pb2.MSPRole(msp_identifier=msp_id, role=msp_principal_pb2.MSPRole.PEER)
    return msp_principal_pb2.MSPPrincipal(principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
                                          principal=role.SerializeToString())


def term_orgs(term: Term) -> list[str]:
    if isinstance(term, str):
        return [term]
    return sorted({m for k in term[1] for m in term_orgs(k)})


def to_envelope(term: Term) -> bytes:
    """SignaturePolicyEnvelope bytes: identities are the orgs' peer roles in name order."""
    orgs = term_orgs(term)
    index = {m: i for i, m in enumerate(orgs)}
    SP = policies_pb2.SignaturePolicy

    def build(t: Term) -> policies_pb2.SignaturePolicy:
        if isinstance(t, str):
            return SP(signed_by=index[t])
        return SP(n_out_of=SP.NOutOf(n=t[0], rules=[build(k) for k in t[1]]))

    env = policies_pb2.SignaturePolicyEnvelope(version=0, rule=build(term), identities=[_principal(m) for m in orgs])
    return env.SerializeToString(deterministic=True)


def _parse(data: bytes) -> tuple[policies_pb2.SignaturePolicyEnvelope, list[tuple[str, int]]]:
    env = policies_pb2.SignaturePolicyEnvelope()
    env.ParseFromString(data)
    ids = []
    for p in env.identities:
        if p.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
            raise PolicyError("only MSP role principals are supported")
        r = msp_principal_pb2.MSPRole()
        r.ParseFromString(p.principal)
        ids.append((r.msp_identifier, r.role))
    return env, ids


def decode_envelope(data: bytes) -> Term:
    """The term back from envelope bytes (inverse of :func:`to_envelope` for peer-role principals)."""
    env, ids = _parse(data)

    def term(sp: policies_pb2.SignaturePolicy) -> Term:
        if sp.WhichOneof("Type") == "signed_by":
            return ids[sp.signed_by][0]
        return (sp.n_out_of.n, tuple(term(r) for r in sp.n_out_of.rules))

    return term(env.rule)


def envelope_satisfied(data: bytes, signers: Iterable[str]) -> bool:
    """Would Fabric accept endorsements by one peer of each org in ``signers`` (in that order) under
    this envelope?

    Follows Fabric's evaluator (common/cauthdsl): identities deduplicated, each identity satisfies at
    most one ``SignedBy`` (a ``used`` flag per identity), an ``NOutOf`` tries every rule on a copy of
    the flags and keeps the flags of the rules that passed. A PEER principal matches a peer of that
    MSP, a MEMBER principal any identity of it."""
    env, ids = _parse(data)
    signed = list(dict.fromkeys(signers))
    member = msp_principal_pb2.MSPRole.MEMBER

    def ev(sp: policies_pb2.SignaturePolicy, used: list[bool]) -> bool:
        if sp.WhichOneof("Type") == "signed_by":
            msp, role = ids[sp.signed_by]
            for i, who in enumerate(signed):
                if not used[i] and who == msp and role in (msp_principal_pb2.MSPRole.PEER, member):
                    used[i] = True
                    return True
            return False
        verified = 0
        for rule in sp.n_out_of.rules:
            trial = list(used)
            if ev(rule, trial):
                verified += 1
                used[:] = trial
        return verified >= sp.n_out_of.n

    return ev(env.rule, [False] * len(signed))


def count_gates(term: Term) -> tuple[int, int]:
    """(NOutOf gates, SignedBy leaves) of a term."""
    if isinstance(term, str):
        return 0, 1
    g, s = 1, 0
    for k in term[1]:
        a, b = count_gates(k)
        g, s = g + a, s + b
    return g, s


# ---- the compact compiler
def _nester(classes: list[tuple[int, tuple[str, ...]]], order: tuple[int, ...], den: int,
             refs: int) -> Callable[[int], tuple[object, int]]:
    """need -> (root, principal references of its policy): the rule "classes ``order`` hold ``need``",
    the classes nested in that order (one memo for every need asked), as a DAG of nodes: True (nothing
    needed), None (nothing to cover), ("k", (j, ...), k) (at least k orgs of classes j, ...) or
    ("or", j, ((c, sub), ...), cover) where ``cover`` is None or a ("k", ...) node over every class
    from j on.

    A node (i, r, d) stands for a policy G over the classes from level i on with
    "they hold r" AND "fewer than d of their orgs sign"  <=  G  <=  "they hold r": sets of d or more
    orgs are covered higher up. When any k of the classes' orgs hold r (k = the fewest of the lightest
    that do), "at least k of them" is a sound cover: a node may add it and then its branches need only
    be exact below k orgs. Each node keeps whichever of the two is smaller; when k is also the fewest of
    the heaviest that reach r, the cover alone is exact. A node whose form alone has more than ``refs``
    principal references is not built further (no policy holding it fits); _TooLarge when the root is
    such a node, or more than ``refs`` times min(classes, 8) nodes exist."""
    w = [classes[j][0] * den for j in order]
    n = [len(classes[j][1]) for j in order]
    m = len(order)
    suffix = [0] * (m + 1)
    for i in range(m - 1, -1, -1):
        suffix[i] = suffix[i + 1] + w[i] * n[i]
    heads = [sum(n[i:]) for i in range(m)]
    # per level: the weights of the orgs of that level and below, lightest first
    ladder = [sorted(w[k] for k in range(i, m) for _ in range(n[k])) for i in range(m)]
    memo: dict[tuple[int, int, int], tuple[object, int]] = {}
    cap = refs * min(m, 8)

    def fewest(i: int, r: int) -> tuple[int | None, int | None]:
        """(the fewest of the lightest orgs that reach r, the fewest of the heaviest that do)."""
        lw = ladder[i]
        light = heavy = 0
        k = h = None
        for s in range(1, len(lw) + 1):
            light += lw[s - 1]
            heavy += lw[-s]
            if h is None and heavy >= r:
                h = s
            if light >= r:
                k = s
                break
        return k, h

    def node(i: int, r: int, d: int) -> tuple[object, int]:
        """(node, principal references of its expanded policy)."""
        if r <= 0:
            return True, 0
        if r > suffix[i]:
            return None, 0
        d = min(d, heads[i] + 1)
        key = (i, r, d)
        if key in memo:
            return memo[key]
        k, h = fewest(i, r)
        if h >= d:
            out: tuple[object, int] = (None, 0)             # every winner here has d orgs or more
        elif k == h or i == m - 1:
            out = (("k", tuple(sorted(order[i:])), k), heads[i])
        else:
            out = min((_branches(i, r, d, None), _branches(i, r, k, ("k", tuple(sorted(order[i:])), k))),
                      key=lambda o: o[1])
        memo[key] = out
        if len(memo) > cap:
            raise _TooLarge
        return out

    def _branches(i: int, r: int, d: int, cover: object) -> tuple[object, int]:
        branches, prev, size = [], object(), heads[i] if cover else 0
        for c in range(n[i] + 1):
            if c >= d:
                break
            sub, sub_size = node(i + 1, r - c * w[i], d - c)
            if sub is not None and sub != prev:
                branches.append((c, sub))
                size += (n[i] if c else 0) + sub_size
                if size > refs:
                    return _TOO_BIG, size                    # no policy that holds this one can fit
            prev = sub
            if sub is True:
                break
        if cover is None and len(branches) == 1 and branches[0][0] == 0:
            return branches[0][1], size                      # class i does not matter here
        if cover is not None and not branches:
            return cover, heads[i]
        return ("or", order[i], tuple(branches), cover), size

    def at(need: int) -> tuple[object, int]:
        root, size = node(0, need, heads[0] + 1)
        if root is _TOO_BIG or size > refs:
            raise _TooLarge
        return root, size

    return at


def _banded(classes: list[tuple[int, tuple[str, ...]]], side: tuple[int, ...], need: int, den: int,
            refs: int) -> tuple[object, int]:
    """The rule as ("band", ((g, s), ...)): OR over bands of AND(g, s), g a form over the
    classes of ``side``, s one over the others (``rest``); (root, principal references).

    The rest can hold only certain stakes (its achievable sums). A count vector x of ``side`` holding
    S(x) < need leaves the rest to hold need - S(x), that is the least achievable sum ``key`` at or
    above it; vectors sharing a key are one band, and bands of larger keys hold less on the side.
    Band j asks "side is at least one of its minimal vectors" AND "rest holds K_j" (H_j, a nested
    form). Bands are taken in runs p..q of increasing keys: in a run, band j < q asks only for what H_j
    holds beyond H_(j+1) -- the rest holding K_j but less than K_(j+1), at least one of that set's
    minimal vectors (D_j, often one or two vectors where H_j is ten branches) -- and in exchange its
    side form also accepts the vectors of bands p..j (their minimal vectors, or "side holds lo_j", the
    least S of band j, whichever is smaller); band q asks for H_q. Exact: every part holds need
    (a side form accepts only vectors of key <= K_j, the rest holds K_j). A winning set, side x in band
    b of run p..q, rest y holding K_b: the first j >= b with y holding less than K_(j+1) (or q) has
    y in D_j (or H_q), and the side form of part j accepts x, as p <= b <= j. The runs are chosen by
    dynamic programming over the bands, fewest references; runs of one band are the plain banded form.
    Where stakes are multiples of a few units (300/400/500/600) many side vectors share a key, and
    where they do not (379/479/552/658) each band's increment is a vector or two."""
    rest = tuple(j for j in range(len(classes)) if j not in side)
    w = {j: classes[j][0] * den for j in range(len(classes))}
    n = {j: len(classes[j][1]) for j in range(len(classes))}
    room = 1
    for j in rest:
        room *= n[j] + 1
    if room > BAND_MAX_REST:
        raise _TooLarge
    by_sum: dict[int, list[tuple[int, ...]]] = {}    # stake the rest holds -> its count vectors holding it
    for y in product(*(range(n[j] + 1) for j in rest)):
        by_sum.setdefault(sum(c * w[j] for j, c in zip(rest, y)), []).append(y)
    ladder = sorted(by_sum)
    keys: dict[tuple[int, ...], int] = {}
    for counts in product(*(range(n[j] + 1) for j in side)):
        held = sum(c * w[j] for j, c in zip(side, counts))
        at = bisect_left(ladder, need - held)
        if at < len(ladder):
            keys[counts] = ladder[at] if held < need else 0
    bands: dict[int, list[tuple[int, ...]]] = {}      # key -> the band's minimal vectors
    for counts, key in keys.items():
        # minimal in its band iff no one-org-less vector is in the same band (the key only grows as S falls)
        if all(keys.get(counts[:i] + (c - 1,) + counts[i + 1:]) != key for i, c in enumerate(counts) if c):
            bands.setdefault(key, []).append(counts)
    K = sorted(bands)
    # every part costs an OutOf over a class of each pair, but the one whose side is nothing (the
    # largest key) and the one whose rest is nothing (key 0): too many bands cannot fit
    if (len(K) - 2) * (min(n[j] for j in side) + min(n[j] for j in rest)) > refs:
        raise _TooLarge
    nests = [[_nester(classes, o, den, refs) for o in _orders_of(js)] for js in (side, rest)]

    def smallest(which: int, r: int) -> tuple[object, int]:
        found = []
        for nest in nests[which]:
            try:
                found.append(nest(r))
            except _TooLarge:
                continue
        return min(found, key=lambda f: f[1]) if found else (_TOO_BIG, refs + 1)

    def listed(js: tuple[int, ...], low: Sequence[tuple[int, ...]]) -> tuple[object, int]:
        """("any", js, low): at least the counts of one of the (minimal) vectors ``low``."""
        low = tuple(sorted(low))
        if not any(low[0]):
            return True, 0
        return ("any", js, low), sum(n[j] for v in low for j, c in zip(js, v) if c)

    lo = [min(sum(c * w[j] for j, c in zip(side, v)) for v in bands[k]) for k in K]
    whole = [smallest(1, k) if k > 0 else (True, 0) for k in K]                         # H_j
    rise = []                                                                           # D_j
    for j in range(len(K) - 1):
        sums = ladder[bisect_left(ladder, K[j]):bisect_left(ladder, K[j + 1])]
        increment = _minimal(y for v in sums for y in by_sum[v])
        rise.append(min(listed(rest, increment), whole[j], key=lambda f: f[1]))
    nested_side = [smallest(0, v) for v in lo]
    # best[q]: (references, start p of the last run, the side forms of runs from p) of bands 0..q-1 in
    # runs, None while none fits; forward over each run's start p, runs of at most BAND_MAX_RUN bands
    best: list[tuple[int, int, list] | None] = [(0, 0, [])] + [None] * len(K)
    for p in range(len(K)):
        if best[p] is None:
            continue                                  # no run ending at p - 1 fits
        acc: list[tuple[int, ...]] = []
        size, forms = best[p][0], []
        for j in range(p, min(len(K), p + BAND_MAX_RUN)):
            # band j holds less than the bands before it: its vectors are minimal, and only drop theirs
            low = bands[K[j]]
            acc = low + [u for u in acc if not any(_at_least(u, v) for v in low)]
            forms.append(min(listed(side, acc), nested_side[j], key=lambda f: f[1]))
            size += forms[-1][1]
            if size > refs:
                break                                 # no longer run from p fits
            if best[j + 1] is None or size + whole[j][1] < best[j + 1][0]:
                best[j + 1] = (size + whole[j][1], p, forms)   # its first j - p + 1 are this run's
            if j + 1 < len(K):
                size += rise[j][1]
    if best[-1] is None or best[-1][0] > refs:
        raise _TooLarge
    size, parts, q = best[-1][0], [], len(K)
    while q:
        _, p, forms = best[q]
        parts[:0] = [(forms[j - p][0], (rise[j] if j < q - 1 else whole[j])[0]) for j in range(p, q)]
        q = p
    return ("band", tuple(parts)), size


def _at_least(u: tuple[int, ...], v: tuple[int, ...]) -> bool:
    """Does count vector ``u`` hold at least the counts of ``v``?"""
    return all(a >= b for a, b in zip(u, v))


def _minimal(vectors: Iterable[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """The minimal ones of count vectors (none at least another)."""
    low: list[tuple[int, ...]] = []
    for v in sorted(set(vectors), key=lambda v: (sum(v), v)):
        if not any(_at_least(v, m) for m in low):
            low.append(v)
    return low


def _expand(root: object, classes: list[tuple[int, tuple[str, ...]]], limit_refs: int) -> Term:
    refs = [0]

    def of(js: tuple[int, ...], k: int) -> Term:
        orgs = sorted(m for j in js for m in classes[j][1])
        refs[0] += len(orgs)
        if refs[0] > limit_refs:
            raise _TooLarge
        return orgs[0] if len(orgs) == 1 else gate(k, list(orgs))

    def any_of(conjunctions: Iterable[list[Term]]) -> Term:
        """OR over ANDs of the given parts."""
        return gate(1, [gate(len(parts), parts) for parts in conjunctions])

    def term(x: object) -> Term:
        if x[0] == "k":
            return of(x[1], x[2])
        if x[0] == "any":
            return any_of([of((j,), c) for j, c in zip(x[1], v) if c] for v in x[2])
        if x[0] == "band":
            return any_of([term(p) for p in band if p is not True] for band in x[1])
        cover = [[term(x[3])]] if x[3] is not None else []
        return any_of(cover + [([of((x[1],), c)] if c else []) + ([] if sub is True else [term(sub)])
                               for c, sub in x[2]])

    return term(root)


def _paths(x: object, classes: list[tuple[int, tuple[str, ...]]]) -> Iterator[dict[int, int]]:
    """The count vectors (class -> count) of the nested form's branches, one at a time."""
    if x is True:
        yield {}
        return
    if x[0] == "k":
        for split in _splits(x[1], x[2], classes):
            yield dict(zip(x[1], split))
        return
    if x[0] == "any":
        for v in x[2]:
            yield {j: c for j, c in zip(x[1], v) if c}
        return
    if x[0] == "band":
        for g, s in x[1]:
            for p in _paths(g, classes):
                for q in _paths(s, classes):
                    yield {**p, **q}
        return
    if x[3] is not None:
        yield from _paths(x[3], classes)
    for c, sub in x[2]:
        for p in _paths(sub, classes):
            yield {**p, x[1]: c} if c else p


def _splits(js: tuple[int, ...], k: int, classes) -> Iterator[tuple[int, ...]]:
    """Every way of taking exactly ``k`` orgs from classes ``js`` (a count per class, in that order)."""
    if len(js) == 1:
        if k <= len(classes[js[0]][1]):
            yield (k,)
        return
    room = sum(len(classes[j][1]) for j in js[1:])
    for c in range(max(0, k - room), min(k, len(classes[js[0]][1])) + 1):
        for rest in _splits(js[1:], k - c, classes):
            yield (c, *rest)


def _orders_of(js: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The nesting orders tried for classes ``js``: all of them up to ALL_ORDERS_MAX_CLASSES classes,
    else largest and smallest stake first."""
    if len(js) <= ALL_ORDERS_MAX_CLASSES:
        return list(permutations(js))
    return [tuple(js), tuple(js)[::-1]]


def _band_sides(classes) -> list[tuple[int, ...]]:
    """The ``side`` classes of the banded forms tried: every split into two groups of two classes or
    more, up to BAND_MAX_CLASSES classes, whose side has at most BAND_MAX_VECTORS count vectors."""
    m = len(classes)
    if not 4 <= m <= BAND_MAX_CLASSES:
        return []
    out = []
    for r in range(2, m - 1):
        for side in combinations(range(m), r):
            vectors = 1
            for j in side:
                vectors *= len(classes[j][1]) + 1
            if vectors <= BAND_MAX_VECTORS:
                out.append(side)
    return out


def compact_policy(stakes: dict[str, int], num: int, den: int,
                   limit: int = MAX_POLICY_BYTES) -> tuple[Term, list[tuple[int, tuple[str, ...]]], object]:
    """(term, stake classes, nested form) of the smallest nested form found; PolicyError if none fits."""
    total = _check(stakes, num, den)
    classes = stake_classes(stakes)
    need = num * total
    refs = limit // ENVELOPE_REF_BYTES + 1    # more principal references than this cannot fit in ``limit``
    forms = []                                 # (principal references, (kind, classes), root)
    for order in _orders_of(tuple(range(len(classes)))):
        try:
            root, size = _nester(classes, order, den, refs)(need)
        except _TooLarge:
            continue
        forms.append((size, (0, order), root))
    for side in _band_sides(classes):
        try:
            root, size = _banded(classes, side, need, den, refs)
        except _TooLarge:
            continue
        forms.append((size, (1, side), root))
    best = None
    for size, tag, root in sorted(forms, key=lambda f: f[:2]):
        if best is not None and size * ENVELOPE_REF_BYTES > best[0][0]:
            break                              # an envelope holds ENVELOPE_REF_BYTES per reference at least
        try:
            term = _expand(root, classes, refs)
        except _TooLarge:
            continue
        env = to_envelope(term)
        if len(env) > limit:
            continue
        key = (len(env), len(to_string(term)), tag)
        if best is None or key < best[0]:
            best = (key, term, root)
    if best is None:
        staked = sum(len(o) for _, o in classes)
        raise PolicyError(
            f"no exact endorsement policy of at most {limit} bytes for {staked} staked orgs in {len(classes)} "
            f"distinct stake classes at quorum {num}/{den}: orgs of equal stake share one OutOf term, "
            f"so use fewer distinct stake values")
    return best[1], classes, best[2]


def _minimal_count_vectors(classes, num: int, den: int, root: object) -> tuple[list[list[int]], bool]:
    """The minimal winning vectors of per-class counts (canonical class order), largest counts of the
    largest stakes first, and whether that is all of them: the count vectors of the nested form's
    paths that lose when any count drops (every minimal vector is a path: a branch is only left out
    when a smaller count does as well). At most :data:`MAX_VECTORS` are listed, and at most
    :data:`MAX_PATHS` paths read: an ``OutOf`` over many classes stands for every way of splitting
    its count among them (50 orgs of 50 close stakes: C(50, 34) ways)."""
    total = sum(s * len(o) for s, o in classes)
    out = set()
    for read, p in enumerate(_paths(root, classes)):
        if read >= MAX_PATHS or len(out) > MAX_VECTORS:
            return [list(v) for v in sorted(out, reverse=True)[:MAX_VECTORS]], False
        v = tuple(p.get(j, 0) for j in range(len(classes)))
        held = sum(c * classes[j][0] for j, c in enumerate(v))
        if all(c == 0 or (held - classes[j][0]) * den < num * total for j, c in enumerate(v)):
            out.add(v)
    return [list(v) for v in sorted(out, reverse=True)], True


def compile_policy(stakes: dict[str, int], num: int, den: int) -> dict:
    """Everything the ledger keeps about the current stake rule: the threshold, the stake classes,
    the minimal count vectors (one count per class: any that many orgs of each class; the first
    :data:`MAX_VECTORS` when ``vectors_complete`` is false), the policy string, the envelope and their
    sizes."""
    term, classes, root = compact_policy(stakes, num, den)
    text, env = to_string(term), to_envelope(term)
    gates, refs = count_gates(term)
    vectors, complete = _minimal_count_vectors(classes, num, den, root)
    return {"threshold": [num, den],
            "classes": [{"stake": s, "orgs": list(o)} for s, o in classes],
            "vectors": vectors, "vectors_complete": complete,
            "policy": text, "envelope_hex": env.hex(),
            "size": {"policy_bytes": len(text.encode()), "envelope_bytes": len(env), "gates": gates,
                     "signed_by": refs}}


SUMMARY_TEXT_MAX = 1024       # an event names a policy by its text only up to this many characters


def summary(compiled: dict | None) -> dict | None:
    """What an event or a transaction's answer says of a newly compiled policy: its threshold, how many
    stake classes, the envelope's SHA-256 and size, and its text when that is short (a 50-org text can
    be 200 KB, and ``get_policy`` has it); None when no policy was compiled."""
    if not compiled:
        return None
    env = bytes.fromhex(compiled["envelope_hex"])
    out = {"threshold": list(compiled["threshold"]), "classes": len(compiled["classes"]),
           "envelope_sha256": hashlib.sha256(env).hexdigest(), "envelope_bytes": len(env)}
    if len(compiled["policy"]) <= SUMMARY_TEXT_MAX:
        out["text"] = compiled["policy"]
    return out
