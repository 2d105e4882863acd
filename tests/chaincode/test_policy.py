"""The compiled stake policy is exactly the stake rule, under Fabric's own evaluation, and stays compact."""
import random
import re
from itertools import combinations, islice, permutations, product

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2

from fedfabric_cc import policy
from fedfabric_protocol import stakerule

from . import policy_reference as reference

O = ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"]


def names(n):
    return [f"Org{i + 1}MSP" for i in range(n)]


def subsets(orgs):
    for size in range(len(orgs) + 1):
        yield from combinations(orgs, size)


# ---- a reader of the lifecycle policy syntax, to evaluate the string the peer CLI is given
_TOKEN = re.compile(r"\s*(AND|OR|OutOf|\(|\)|,|\d+|'[^']*')")


def parse_policy_string(text: str) -> policy.Term:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"cannot read policy at {text[pos:pos + 20]!r}"
        toks.append(m.group(1))
        pos = m.end()
    it = iter(toks + [None])
    cur = [next(it)]

    def take(want=None):
        t = cur[0]
        assert want is None or t == want, (t, want)
        cur[0] = next(it)
        return t

    def term():
        t = take()
        if t.startswith("'"):
            msp, role = t[1:-1].rsplit(".", 1)
            assert role == "peer"
            return msp
        take("(")
        n = None
        if t == "OutOf":
            n = int(take())
            take(",")
        kids = [term()]
        while cur[0] == ",":
            take(",")
            kids.append(term())
        take(")")
        return (len(kids) if t == "AND" else 1 if t == "OR" else n, tuple(kids))

    out = term()
    assert cur[0] is None
    return out


def assert_exact(stakes: dict, num: int, den: int, shuffle: random.Random | None = None) -> dict:
    """Every subset of orgs: the envelope (as Fabric evaluates it), the policy string and the stake rule agree."""
    compiled = policy.compile_policy(stakes, num, den)
    env = bytes.fromhex(compiled["envelope_hex"])
    from_string = parse_policy_string(compiled["policy"])
    assert from_string == policy.decode_envelope(env)
    orgs = sorted(stakes)
    for s in subsets(orgs):
        want = stakerule.wins(stakes, num, den, s)
        signers = list(s)
        if shuffle:
            shuffle.shuffle(signers)   # Fabric's greedy evaluation sees the endorsements in any order
        assert policy.envelope_satisfied(env, signers) == want, (stakes, num, den, s)
        assert reference.term_satisfied(from_string, s) == want
        assert stakerule.accepts(compiled, s) == want
    return compiled


def brute_vectors(stakes, num, den):
    classes = stakerule.stake_classes(stakes)
    total = sum(stakes.values())
    out = []
    ranges = [range(len(o) + 1) for _, o in classes]

    def held(v):
        return sum(c * classes[j][0] for j, c in enumerate(v))

    def rec(prefix):
        if len(prefix) == len(classes):
            if held(prefix) * den >= num * total and all(
                    c == 0 or (held(prefix) - classes[j][0]) * den < num * total for j, c in enumerate(prefix)):
                out.append(list(prefix))
            return
        for c in ranges[len(prefix)]:
            rec(prefix + [c])

    rec([])
    return sorted(out, reverse=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=10), st.integers(1, 12), st.integers(1, 12),
       st.integers(0, 2**31))
def test_compiled_policy_is_exactly_the_stake_rule(stakes, a, b, seed):
    num, den = min(a, b), max(a, b)
    st_ = dict(zip(names(len(stakes)), stakes))
    if sum(stakes) == 0:
        with pytest.raises(policy.PolicyError, match="total stake must be positive"):
            policy.compile_policy(st_, num, den)
        return
    compiled = assert_exact(st_, num, den, random.Random(seed))
    assert compiled["vectors"] == brute_vectors(st_, num, den)


@pytest.mark.parametrize("seed", range(25))
def test_random_stakes_up_to_ten_orgs_agree_with_the_coalition_form(seed):
    rnd = random.Random(seed)
    n = rnd.randint(1, 10)
    values = [rnd.choice([1, 2, 3, 5, 10, 100, 101, 250, 10**12]) for _ in range(rnd.randint(1, 4))]
    stakes = {m: rnd.choice(values) for m in names(n)}
    num, den = rnd.choice([(1, 2), (2, 3), (3, 4), (1, 1), (1, 3), (51, 100)])
    compiled = assert_exact(stakes, num, den, rnd)
    coalitions = reference.minimal_winning_coalitions(stakes, num, den)
    coalition_env = reference.signature_policy_envelope(coalitions)
    env = bytes.fromhex(compiled["envelope_hex"])
    for s in subsets(sorted(stakes)):
        assert policy.envelope_satisfied(env, s) == policy.envelope_satisfied(coalition_env, s)
    # the minimal winning coalitions are exactly the sets whose class counts are a minimal vector
    classes = [set(o) for _, o in stakerule.stake_classes(stakes)]
    counts = sorted([len(set(c) & k) for k in classes] for c in coalitions)
    expanded = sorted(list(v) for v in compiled["vectors"] for _ in range(_combos(v, classes)))
    assert sorted(map(list, set(map(tuple, counts)))) == sorted(compiled["vectors"])
    assert len(counts) == len(expanded)


def _combos(v, classes):
    from math import comb
    out = 1
    for c, k in zip(v, classes):
        out *= comb(len(k), c)
    return out


@pytest.mark.parametrize("stakes,num,den,want", [
    ((100, 100, 100), 2, 3, "OutOf(2,'Org1MSP.peer','Org2MSP.peer','Org3MSP.peer')"),
    ((50, 30, 20), 2, 3, "AND('Org1MSP.peer',OR('Org2MSP.peer','Org3MSP.peer'))"),
    ((70, 20, 10), 2, 3, "'Org1MSP.peer'"),
    ((1, 1, 1), 1, 1, "AND('Org1MSP.peer','Org2MSP.peer','Org3MSP.peer')"),
    ((10, 0, 10), 1, 2, "OR('Org1MSP.peer','Org3MSP.peer')"),
])
def test_policy_strings(stakes, num, den, want):
    st_ = dict(zip(O, stakes))
    compiled = assert_exact(st_, num, den)
    assert compiled["policy"] == want


def test_record_envelope_structure_and_determinism():
    st_ = {"Org3MSP": 100, "Org1MSP": 100, "Org2MSP": 100}
    c = policy.compile_policy(st_, 2, 3)
    assert c["threshold"] == [2, 3]
    assert c["classes"] == [{"stake": 100, "orgs": ["Org1MSP", "Org2MSP", "Org3MSP"]}]
    assert c["vectors"] == [[2]]
    assert c["size"] == {"policy_bytes": len(c["policy"]), "envelope_bytes": len(c["envelope_hex"]) // 2,
                         "gates": 1, "signed_by": 3}
    env = policies_pb2.SignaturePolicyEnvelope()
    env.ParseFromString(bytes.fromhex(c["envelope_hex"]))
    assert env.version == 0 and env.rule.n_out_of.n == 2 and [r.signed_by for r in env.rule.n_out_of.rules] == [0, 1, 2]
    roles = []
    for p in env.identities:
        assert p.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE
        r = msp_principal_pb2.MSPRole()
        r.ParseFromString(p.principal)
        roles.append((r.msp_identifier, r.role))
    assert roles == [(m, msp_principal_pb2.MSPRole.PEER) for m in O[:3]]
    assert policy.decode_envelope(bytes.fromhex(c["envelope_hex"])) == (2, ("Org1MSP", "Org2MSP", "Org3MSP"))
    # the same stake vector, whatever the order it comes in, compiles to the same bytes
    mixed = {m: (100, 200, 300, 400)[i % 4] for i, m in enumerate(names(12))}
    ref = policy.compile_policy(mixed, 2, 3)
    for perm in list(islice(permutations(sorted(mixed)), 5)) + [tuple(reversed(sorted(mixed)))]:
        assert policy.compile_policy({m: mixed[m] for m in perm}, 2, 3) == ref


def test_the_coalition_envelope_still_reads_back():
    cs = [("Org1MSP", "Org2MSP"), ("Org1MSP", "Org3MSP")]
    env = reference.signature_policy_envelope(cs)
    assert policy.decode_envelope(env) == (1, ((2, ("Org1MSP", "Org2MSP")), (2, ("Org1MSP", "Org3MSP"))))
    assert policy.to_string(policy.decode_envelope(env)) == \
        "OR(AND('Org1MSP.peer','Org2MSP.peer'),AND('Org1MSP.peer','Org3MSP.peer'))"
    assert policy.envelope_satisfied(env, ["Org3MSP", "Org1MSP"]) and not policy.envelope_satisfied(env, ["Org2MSP", "Org3MSP"])


def test_the_evaluator_follows_fabric_greedy_identity_use():
    # Fabric lets one identity satisfy one SignedBy only: AND(A, A) needs two identities of A
    env = policy.to_envelope((2, ("Org1MSP", "Org1MSP")))
    assert not policy.envelope_satisfied(env, ["Org1MSP"])
    assert reference.term_satisfied((2, ("Org1MSP", "Org1MSP")), ["Org1MSP"])   # the plain boolean reading differs
    # ... and a passing gate keeps every identity it used: OutOf(2, OR(A,B), A) fails with A and B
    env = policy.to_envelope((2, ((1, ("Org1MSP", "Org2MSP")), "Org1MSP")))
    assert not policy.envelope_satisfied(env, ["Org1MSP", "Org2MSP"])


def _sized(stakes, num=2, den=3):
    c = policy.compile_policy(stakes, num, den)
    assert c["size"]["policy_bytes"] <= policy.MAX_POLICY_BYTES and c["size"]["envelope_bytes"] <= policy.MAX_POLICY_BYTES
    assert len(c["policy"].encode()) == c["size"]["policy_bytes"]
    return c


def test_fifty_equal_orgs_are_one_outof():
    c = _sized({m: 100 for m in names(50)})
    assert c["policy"].startswith("OutOf(34,'Org10MSP.peer',") and c["size"]["gates"] == 1
    assert c["size"]["policy_bytes"] < 1000 and c["vectors"] == [[34]]


@pytest.mark.parametrize("counts,values", [
    ((25, 25), (100, 200)),
    ((17, 17, 16), (100, 200, 300)),
    ((35, 8, 5, 2), (100, 200, 300, 500)),
    ((40, 5, 3, 2), (100, 150, 225, 340)),
])
def test_fifty_orgs_with_few_distinct_stakes_fit(counts, values):
    orgs = iter(names(50))
    stakes = {next(orgs): v for n, v in zip(counts, values) for _ in range(n)}
    c = _sized(stakes)
    assert [k["stake"] for k in c["classes"]] == sorted(values, reverse=True)
    rnd = random.Random(0)
    for _ in range(300):    # spot checks: the whole power set of 50 orgs is out of reach
        s = rnd.sample(sorted(stakes), rnd.randint(1, 50))
        assert policy.envelope_satisfied(bytes.fromhex(c["envelope_hex"]), s) == stakerule.wins(stakes, 2, 3, s)


@pytest.mark.parametrize("stakes,match", [
    ({m: 100 * (i + 1) for i, m in enumerate(names(20))}, "20 staked orgs in 20 distinct stake classes"),
    # five values apart by uneven steps: no banded forms beyond four classes, every nesting is over 64 KB
    ({m: (379, 479, 552, 658, 701)[i % 5] for i, m in enumerate(names(50))},
     "50 staked orgs in 5 distinct stake classes"),
    ({m: 1 + i for i, m in enumerate(names(256))}, "256 staked orgs"),
])
def test_no_compact_form_is_refused_clearly(stakes, match):
    with pytest.raises(policy.PolicyError, match=match) as ei:
        policy.compile_policy(stakes, 2, 3)
    assert f"at most {policy.MAX_POLICY_BYTES} bytes" in str(ei.value) and "fewer distinct stake values" in str(ei.value)


@pytest.mark.parametrize("stakes,num,den,match", [
    ({"A": 0}, 1, 2, "total stake must be positive"),
    ({"A": 1}, 0, 2, "must be in (0, 1]"),
    ({"A": 1}, 3, 2, "must be in (0, 1]"),
    ({"A": -1, "B": 2}, 1, 2, "must not be negative"),
])
def test_policy_errors(stakes, num, den, match):
    with pytest.raises(policy.PolicyError) as ei:
        policy.compile_policy(stakes, num, den)
    assert match in str(ei.value)


def test_the_reference_coalitions_refuse_large_consortia():
    with pytest.raises(policy.PolicyError, match="more than 16"):
        reference.minimal_winning_coalitions({f"O{i}": 1 for i in range(17)}, 1, 2)
    assert len(reference.minimal_winning_coalitions({m: 1 for m in names(10)}, 2, 3)) == 120   # C(10, 7)


# ---- banded forms: OR over bands of AND(side holds lo, rest holds key)
def _every_banded_form(stakes: dict, num: int, den: int):
    """(side, term, root, classes) of every banded form of ``stakes``, built whether or not it is the
    smallest."""
    classes = stakerule.stake_classes(stakes)
    need = num * sum(stakes.values())
    for side in policy._band_sides(classes):
        root, size = policy._banded(classes, side, need, den, 10**6)
        term = policy._expand(root, classes, 10**6)
        assert policy.count_gates(term)[1] == size
        yield side, term, root, classes


@pytest.mark.parametrize("seed", range(60))
def test_every_banded_form_is_exactly_the_stake_rule(seed):
    """Four stake classes of 1-3 orgs, stakes that share units (so bands hold several vectors) or not:
    every banded form, evaluated as Fabric does with endorsements in random order, is the stake rule on
    every subset, and its paths hold every minimal count vector."""
    rnd = random.Random(seed)
    unit = rnd.choice([1, 1, 100, 7])
    values = rnd.sample(range(1, 13), 4) if unit != 1 else rnd.sample(range(1, 1000), 4)
    counts = [rnd.randint(1, 3) for _ in range(4)]
    orgs = iter(names(sum(counts)))
    stakes = {next(orgs): v * unit for v, c in zip(values, counts) for _ in range(c)}
    num, den = rnd.choice([(1, 2), (2, 3), (3, 4), (1, 1), (1, 3), (51, 100)])
    forms = list(_every_banded_form(stakes, num, den))
    assert len(forms) == 6                                 # 4 classes: every side of two classes
    want = brute_vectors(stakes, num, den)
    for side, term, root, classes in forms:
        env = policy.to_envelope(term)
        for s in subsets(sorted(stakes)):
            signers = list(s)
            rnd.shuffle(signers)
            assert policy.envelope_satisfied(env, signers) == stakerule.wins(stakes, num, den, s), (side, s)
        vectors, complete = policy._minimal_count_vectors(classes, num, den, root)
        assert complete and vectors == want, side


def _holds(root, grid: np.ndarray) -> np.ndarray:
    """Which rows of ``grid`` (a count of orgs per class) the compiled form accepts, read as booleans."""
    memo: dict[int, np.ndarray] = {}

    def ev(x) -> np.ndarray:
        if x is True or x is None:
            return np.full(len(grid), bool(x))
        if id(x) in memo:
            return memo[id(x)]
        if x[0] == "k":
            out = grid[:, list(x[1])].sum(axis=1) >= x[2]
        elif x[0] == "any":
            out = np.zeros(len(grid), bool)
            for v in x[2]:
                out |= (grid[:, list(x[1])] >= np.array(v)).all(axis=1)
        elif x[0] == "band":
            out = np.zeros(len(grid), bool)
            for g, s in x[1]:
                out |= ev(g) & ev(s)
        else:
            out = ev(x[3]) if x[3] is not None else np.zeros(len(grid), bool)
            for c, sub in x[2]:
                out = out | ((grid[:, x[1]] >= c) & ev(sub))
        memo[id(x)] = out
        return out

    return ev(root)


@pytest.mark.parametrize("values,counts", [
    # the four-value mixes a plain banded form (one band a part) left over 64 KB: 67,041, 65,817, 65,763,
    # 66,621 and 70,127 bytes at best; runs of bands that ask only for each band's increment fit
    ((379, 479, 552, 658), (13, 13, 12, 12)),
    ((409, 639, 761, 900), (13, 13, 12, 12)),
    ((400, 500, 700, 900), (13, 13, 12, 12)),
    ((500, 700, 800, 900), (12, 12, 13, 13)),
])
def test_four_uneven_stakes_fit_in_runs_of_bands_exactly(values, counts):
    """Exact on every count vector of the four classes (14^4 of them: every set of orgs is one of
    them, orgs of a class being interchangeable in the policy), the envelope is that form, and Fabric's
    evaluation agrees on sets around the threshold in random order."""
    orgs = iter(names(50))
    stakes = {next(orgs): v for v, c in zip(values, counts) for _ in range(c)}
    term, classes, root = policy.compact_policy(stakes, 2, 3)
    env = policy.to_envelope(term)
    assert len(env) <= 50_000 and root[0] == "band"
    assert any(isinstance(s, tuple) and s[0] == "any" for _, s in root[1])   # some part asks for an increment
    grid = np.array(list(product(*(range(len(o) + 1) for _, o in classes))))
    wins = 3 * (grid @ np.array([s for s, _ in classes])) >= 2 * sum(stakes.values())
    assert (_holds(root, grid) == wins).all() and 0 < wins.sum() < len(grid)
    assert policy._minimal_count_vectors(classes, 2, 3, root) == (brute_vectors(stakes, 2, 3), True)
    rnd = random.Random(7)
    members = sorted(stakes)
    for _ in range(25):
        s = rnd.sample(members, rnd.randint(29, 37))
        assert policy.envelope_satisfied(env, s) == stakerule.wins(stakes, 2, 3, s)


def test_stakes_in_round_units_are_compiled_by_bands():
    """50 orgs of 300/400/500/600 in groups of 12-13: every nesting by class is over 64 KB (75 KB at
    best; refused before banded forms); in bands, 31 KB."""
    stakes = {m: (300, 400, 500, 600)[i % 4] for i, m in enumerate(names(50))}
    compiled = policy.compile_policy(stakes, 2, 3)
    assert compiled["size"]["envelope_bytes"] < 32_000 and compiled["vectors_complete"]
    env = bytes.fromhex(compiled["envelope_hex"])
    assert policy.decode_envelope(env) == parse_policy_string(compiled["policy"])
    classes = stakerule.stake_classes(stakes)
    need = 2 * sum(stakes.values())
    for order in permutations(range(4)):                 # an envelope holds 4 bytes a reference at least
        root, refs = policy._nester(classes, order, 3, 10**6)(need)
        if refs * policy.ENVELOPE_REF_BYTES <= policy.MAX_POLICY_BYTES:
            assert len(policy.to_envelope(policy._expand(root, classes, 10**6))) > policy.MAX_POLICY_BYTES
    rnd = random.Random(3)
    members = sorted(stakes)
    for _ in range(100):                                   # sets around the threshold, in random order
        s = rnd.sample(members, rnd.randint(28, 40))
        assert policy.envelope_satisfied(env, s) == stakerule.wins(stakes, 2, 3, s)
    assert compiled["vectors"] == brute_vectors(stakes, 2, 3)
