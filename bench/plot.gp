# plot.gp - benchmark plots from the .dat files the programs write next to their JSON.
#   gnuplot -e "dir='bench/results'" bench/plot.gp
# Each plot is drawn only when its data file exists (partial and quick runs).
if (!exists("dir")) dir = "bench/results"
set terminal pngcairo size 900,560 noenhanced font ",10"
exists_file(f) = system("test -s '" . f . "' && echo 1 || echo 0") eq "1"

lat = dir . "/hit_latency.dat"
if (exists_file(lat)) {
    set output dir . "/hit_latency.png"
    set title "Cached hc_pg_fetch_one hit vs uncached PQexecParams (1 row, Zipf 0.99; backend on the client CPU)"
    set xlabel "percentile"
    set ylabel "latency (microseconds, log scale)"
    set logscale y
    set grid
    set key top left
    plot lat using 1:2 with lines lw 2 title "uncached, unix socket", \
         lat using 1:3 with lines lw 2 title "uncached, TCP loopback", \
         lat using 1:4 with lines lw 2 title "cached hit (unix conn)", \
         lat using 1:5 with lines lw 2 dt 2 title "cached hit (TCP conn)"
    unset logscale y
}

inv = dir . "/invalidation.dat"
if (exists_file(inv)) {
    set output dir . "/invalidation.png"
    set title "Invalidation latency: COMMIT issued -> entry gone in another process"
    set xlabel "percentile"
    set ylabel "latency (microseconds)"
    set grid
    set key top left
    plot inv using 1:2 with lines lw 2 title "idle", \
         inv using 1:3 with lines lw 2 title "under ~1000 writes/s"
}

hr = dir . "/hit_ratio.dat"
if (exists_file(hr)) {
    set output dir . "/hit_ratio.png"
    set title "Hit ratio vs cache size (100k keys): policy vs LRU vs Belady MIN"
    set xlabel "cache size (fraction of keys, log scale)"
    set ylabel "hit ratio"
    set logscale x
    set yrange [0:1]
    set grid
    set key bottom right
    set format x "%g"
    plot for [i=0:2] hr index i using 2:3 with linespoints lw 2 lc i+1 pt 7 \
             title sprintf("policy, Zipf %s", word("0.8 0.99 1.2", i+1)), \
         for [i=0:2] hr index i using 2:5 with linespoints lw 1 lc i+1 dt 2 pt 4 \
             title sprintf("LRU, Zipf %s", word("0.8 0.99 1.2", i+1)), \
         for [i=0:2] hr index i using 2:6 with linespoints lw 1 lc i+1 dt 3 pt 6 \
             title sprintf("MIN, Zipf %s", word("0.8 0.99 1.2", i+1))
    unset logscale x
}
