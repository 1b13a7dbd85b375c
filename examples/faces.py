"""Parts of faces: rank-49 NMF of the ORL faces beside PCA's eigenfaces (Lee & Seung 1999).

    python examples/faces.py [--quick] [--out DIR]

Needs the data extra: pip install nmfkit[data]. Writes PNGs and faces.html into DIR.
"""
import argparse

from nmfkit.demos import DEMOS

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="small images, low rank, few iterations")
parser.add_argument("--out", default="out/faces", help="output folder")
args = parser.parse_args()
result = DEMOS["faces"](args.out, quick=args.quick)
for row in result["table"]:
    print(f"{row['method']}: relative error {row['relative error']}, Hoyer sparseness {row['sparseness W']}")
