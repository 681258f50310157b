"""Prompt screening latency with 10,000 names: p50/p99 per prompt.

The blocklist is 10,000 synthetic figures (first name + surname from fixed lists, one alias
each, seeded), the prompts a mix of plain, disguised and very long ones. Baseline in the same
run: the screening this project had before (fold, then look for each name as a substring: one
pass per name), on the same prompts.

Usage: ``python bench/prompt_screen.py [--names 10000] [--prompts 300]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from guard.identity import PublicFigure
from guard.safety import PromptScreen, normalise_text

FIRST = [
    "anna",
    "boris",
    "carla",
    "dmitri",
    "elena",
    "farid",
    "greta",
    "hiro",
    "ines",
    "jamal",
    "kofi",
    "lena",
    "marco",
    "nadia",
    "oscar",
    "priya",
    "quentin",
    "rosa",
    "sven",
    "tomas",
    "uma",
    "victor",
    "wanda",
    "xavier",
    "yusuf",
    "zoe",
    "tom",
    "eileen",
    "vladimir",
    "jean",
]
SURNAMES = [
    "hanks",
    "collins",
    "putin",
    "moreau",
    "okafor",
    "schmidt",
    "tanaka",
    "rossi",
    "novak",
    "haddad",
    "silva",
    "kowalski",
    "nguyen",
    "ivanova",
    "mendes",
    "larsen",
    "dubois",
    "kaplan",
    "fischer",
    "romero",
    "bauer",
    "costa",
    "sato",
    "weber",
    "popescu",
]
PROMPTS = [
    "a watercolour of a lighthouse at dusk, soft light",
    "make her look like Tom Hanks at the beach",
    "portrait in the style of t0m h4nk5, dramatic lighting",
    "t.o.m h.a.n.k.s waving at the camera",
    "Тоm Наnks in a spacesuit",
    "Thom Hanks eating pasta",
    "T\u200bom Han\u200dks on a red carpet",
]


def figures(count: int, seed: int = 7) -> list[PublicFigure]:
    rng = random.Random(seed)
    made: dict[str, PublicFigure] = {}
    while len(made) < count:
        first, last = rng.choice(FIRST), rng.choice(SURNAMES)
        suffix = rng.randrange(10_000)
        figure_id = f"{first}-{last}-{suffix}"
        name = f"{first} {last}{'' if suffix % 3 else ' ' + rng.choice(SURNAMES)}"
        made[figure_id] = PublicFigure(figure_id, name, (f"{first[0]}. {last}",), (len(made),))
    return list(made.values())


def naive(prompt: str, figures: list[PublicFigure]) -> tuple[str, ...]:
    """The previous screening: one substring search per name and alias."""
    haystack = f" {normalise_text(prompt)} "
    return tuple(
        f.id
        for f in figures
        if any(f" {normalise_text(label)} " in haystack for label in (f.name, *f.aliases))
    )


def timed_ms(function, prompts: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for prompt in prompts:
        start = time.perf_counter()
        function(prompt)
        samples.append((time.perf_counter() - start) * 1000)
    return sorted(samples)


def pct(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(q * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--prompts", type=int, default=300)
    args = parser.parse_args()
    catalogue = figures(args.names)
    start = time.perf_counter()
    screen = PromptScreen(catalogue)
    build_s = time.perf_counter() - start
    rng = random.Random(1)
    short = [rng.choice(PROMPTS) for _ in range(args.prompts)]
    long_prompts = [" ".join(rng.choice(PROMPTS) for _ in range(150))[:10_000] for _ in range(20)]
    print(
        f"{args.names:,} figures ({sum(1 + len(f.aliases) for f in catalogue):,} names); "
        f"screen compiled in {build_s:.1f} s"
    )
    print("\n| prompts | method | p50 ms | p99 ms | max ms | speed-up vs baseline (p50) |")
    print("|---|---|---|---|---|---|")
    for label, prompts in (("typical (≤ 60 chars)", short), ("10,000 chars", long_prompts)):
        ours = timed_ms(screen.screen, prompts)
        base = timed_ms(lambda p: naive(p, catalogue), prompts[: max(5, len(prompts) // 10)])
        for method, samples in (
            ("PromptScreen (all rules)", ours),
            ("baseline (exact only)", base),
        ):
            median = statistics.median(samples)
            print(
                f"| {label} | {method} | {median:.2f} | {pct(samples, 0.99):.2f} "
                f"| {samples[-1]:.2f} | {statistics.median(base) / median:.2f}x |"
            )


if __name__ == "__main__":
    main()
