#!/usr/bin/env bash
# Download and unpack COCO 2017 into data/coco/{images,annotations}.
#
#   bash data/scripts/download_coco.sh [DATA_ROOT]       (default: data)
#   COCO_PARTS="val annotations" bash data/scripts/download_coco.sh
#
# Parts: train (18 GB), val (1 GB), test (6 GB), annotations (241 MB + test-dev info).
# Archives already downloaded are reused and folders already unpacked are skipped;
# an interrupted download resumes.
set -euo pipefail

ROOT="${1:-data}/coco"
PARTS="${COCO_PARTS:-train val test annotations}"
IMAGES_URL="http://images.cocodataset.org/zips"
ANNOTATIONS_URL="http://images.cocodataset.org/annotations"

mkdir -p "$ROOT/images" "$ROOT/annotations" "$ROOT/downloads"

fetch() {  # fetch URL FILE: download unless FILE is complete
    local url="$1" file="$2"
    if [[ -f "$file" ]]; then
        echo "have $file"
        return
    fi
    echo "downloading $url"
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 3 -C - -o "$file.part" "$url"
    elif command -v wget >/dev/null 2>&1; then
        wget -c -O "$file.part" "$url"
    else
        echo "error: neither curl nor wget is installed" >&2
        exit 1
    fi
    mv "$file.part" "$file"
}

images() {  # images NAME: NAME.zip -> images/NAME/
    local name="$1"
    local done_marker="$ROOT/images/.$name.unpacked"
    if [[ -f "$done_marker" ]]; then
        echo "have $ROOT/images/$name"
        return
    fi
    fetch "$IMAGES_URL/$name.zip" "$ROOT/downloads/$name.zip"
    unzip -q -o "$ROOT/downloads/$name.zip" -d "$ROOT/images"
    touch "$done_marker"
}

annotations() {  # annotations ZIP FILE: unpack ZIP unless annotations/FILE exists
    local zip="$1" file="$2"
    if [[ -f "$ROOT/annotations/$file" ]]; then
        echo "have $ROOT/annotations/$file"
        return
    fi
    fetch "$ANNOTATIONS_URL/$zip" "$ROOT/downloads/$zip"
    # The zips hold annotations/*.json: unpack next to images/ so they land in annotations/.
    unzip -q -o "$ROOT/downloads/$zip" -d "$ROOT"
}

command -v unzip >/dev/null 2>&1 || { echo "error: unzip is not installed" >&2; exit 1; }

for part in $PARTS; do
    case "$part" in
        train) images train2017 ;;
        val) images val2017 ;;
        test) images test2017 ;;
        annotations)
            annotations annotations_trainval2017.zip instances_val2017.json
            annotations image_info_test2017.zip image_info_test-dev2017.json
            ;;
        *)
            echo "error: unknown part '$part' (train, val, test, annotations)" >&2
            exit 1
            ;;
    esac
done

echo "COCO 2017 is in $ROOT (delete $ROOT/downloads to free the space of the archives)"
