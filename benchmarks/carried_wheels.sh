# Sourced by benchmarks/gpu.sh and analyses/gpu_tables.sh: the packages the GPU image lacks
# travel as wheels in ROOT/.whl (analyses/README.md). Needs $py and an exported PYTHONPATH.
use_carried_wheels() {  # ROOT: install ROOT/.whl/*.whl into /tmp/site, put it on PYTHONPATH
  compgen -G "$1/.whl/*.whl" > /dev/null || return 0
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$1"/.whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
}
