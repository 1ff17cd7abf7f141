#!/bin/bash
# build.sh [extra flags]: builds abpx from old.cc and new.cc
F="-O3 -DNDEBUG -ffp-contract=off -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vpopcntdq -mavx2 -mpopcnt -I/work/wt/i13/ops/kernels"
g++ $F "$@" -c old.cc -o old.o 2>&1 | grep -E "error" ; g++ $F "$@" -c new.cc -o new.o 2>&1 | grep -E "error"
O=/work/wt/i13/build/rel/ops/CMakeFiles/scales_edge_kernels.dir/kernels
g++ -O2 -I/work/wt/i13/ops/kernels abpx.cc old.o new.o $O/portable.cc.o $O/dispatch.cc.o $O/drivers.cc.o $O/avx2.cc.o $O/avx512.cc.o $O/conv_px8_avx512.cc.o -o abpx
