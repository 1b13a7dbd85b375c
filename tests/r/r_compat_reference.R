# Reference fits from R package NMF for tests/test_r_compat.py.
#
# Usage: Rscript r_compat_reference.R DIR
# Reads from DIR (written by the test, float64 little-endian, column-major):
#   sparse_dims.txt ("m n k"), sparse_X.bin, sparse_W0.bin, sparse_H0.bin
# Writes to DIR:
#   golub_dims.txt ("m n k"), golub_X.bin, golub_W0.bin, golub_H0.bin
#     (esGolub and a start drawn by R's own random seed, rnmf: U(0, max X))
#   {golub,sparse}_weight.bin (ls-nmf's weight matrix, U(0.5, 1.5)), {golub,sparse}_groups.txt
#     (siNMF's sample groups, one label a line)
#   {golub,sparse}_{METHOD}_{N}_{W,H}.bin for N in 1, 10, 100 and every method of
#     nmfAlgorithm() (METHOD with "/" and "-" written "_"); offset also writes _offset.bin,
#     {golub,sparse}_siNMF_W0.bin: siNMF's start W (W0 and one column per group level);
#     siNMF's W and H include the group components (the last rows of H: 0/1 indicators)
#   versions.txt (R and NMF versions), seconds.txt (elapsed seconds per fit)
# Each fit runs exactly N iterations: an integer `.stop` is R's fixed-iteration
# stopping rule (nmf.stop.iteration), which also sets maxIter to N; snmf/r and snmf/l
# (not iterative strategies) take maxIter = N and a convergence test that never passes.
suppressPackageStartupMessages(library(NMF))

args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
path <- function(name) file.path(dir, name)

write_bin <- function(x, name) writeBin(as.double(as.vector(x)), path(name), size = 8, endian = "little")
read_bin <- function(name, nrow, ncol) {
  v <- readBin(path(name), "double", n = nrow * ncol, size = 8, endian = "little")
  matrix(v, nrow, ncol)
}

data(esGolub)
golub <- exprs(esGolub)
storage.mode(golub) <- "double"
dimnames(golub) <- NULL
set.seed(20250)
golub_start <- rnmf(3L, golub)
cases <- list(golub = list(X = golub, W0 = basis(golub_start), H0 = coef(golub_start),
                           groups = as.character(esGolub$ALL.AML)))
writeLines(paste(nrow(golub), ncol(golub), 3L), path("golub_dims.txt"))
write_bin(golub, "golub_X.bin")
write_bin(cases$golub$W0, "golub_W0.bin")
write_bin(cases$golub$H0, "golub_H0.bin")

dims <- scan(path("sparse_dims.txt"), what = integer(), quiet = TRUE)
cases$sparse <- list(X = read_bin("sparse_X.bin", dims[1], dims[2]),
                     W0 = read_bin("sparse_W0.bin", dims[1], dims[3]),
                     H0 = read_bin("sparse_H0.bin", dims[3], dims[2]),
                     groups = rep(c("a", "b", "c"), length.out = dims[2]))
set.seed(20251)
for (data_name in names(cases)) {
  X <- cases[[data_name]]$X
  cases[[data_name]]$weight <- matrix(runif(length(X), 0.5, 1.5), nrow(X), ncol(X))
  write_bin(cases[[data_name]]$weight, paste0(data_name, "_weight.bin"))
  writeLines(cases[[data_name]]$groups, path(paste0(data_name, "_groups.txt")))
}

# A start for `method` from (W0, H0): the model class the method expects; siNMF's
# formula model gets one extra basis column per group (drawn here) and fixed indicator rows.
start_for <- function(case, method, data_name) {
  if (method == "offset") return(nmfModel(W = case$W0, H = case$H0, model = "NMFOffset"))
  if (method == "nsNMF") return(nmfModel(W = case$W0, H = case$H0, model = "NMFns"))
  if (method == "siNMF") {
    gr <- factor(case$groups)
    X <- case$X
    m <- nmfModel(X ~ gr, ncol(case$W0))
    set.seed(20252)
    extra <- matrix(runif(nrow(X) * nlevels(gr), 0, max(X)), nrow(X), nlevels(gr))
    basis(m) <- cbind(case$W0, extra)
    coef(m)[seq_len(ncol(case$W0)), ] <- case$H0
    write_bin(basis(m), paste0(data_name, "_siNMF_W0.bin"))
    return(m)
  }
  nmfModel(W = case$W0, H = case$H0)
}

run_method <- function(case, method, n_iter, data_name) {
  seed <- start_for(case, method, data_name)
  k <- ncol(case$W0)
  X <- case$X
  if (method %in% c("snmf/r", "snmf/l"))
    return(nmf(X, k, method, seed = seed, maxIter = n_iter, bi_conv = c(0, 1e9)))
  if (method == "ls-nmf") return(nmf(X, k, method, seed = seed, .stop = n_iter, weight = case$weight))
  if (method == "pe-nmf") return(nmf(X, k, method, seed = seed, .stop = n_iter, alpha = 0.5, beta = 0.1))
  if (method == "siNMF") {
    gr <- factor(case$groups)
    return(nmf(X ~ gr, k, method, seed = seed, .stop = n_iter))
  }
  nmf(X, k, method, seed = seed, .stop = n_iter)
}

writeLines(c(R.version.string, paste("NMF", as.character(packageVersion("NMF")))), path("versions.txt"))
timing <- character()
for (data_name in names(cases)) {
  case <- cases[[data_name]]
  for (method in nmfAlgorithm()) {
    for (n_iter in c(1L, 10L, 100L)) {
      seconds <- system.time(fit <- suppressWarnings(run_method(case, method, n_iter, data_name)))[["elapsed"]]
      if (niter(fit) != n_iter) stop(method, ": R ran ", niter(fit), " iterations instead of ", n_iter)
      stem <- paste(data_name, gsub("[/-]", "_", method), n_iter, sep = "_")
      write_bin(basis(fit), paste0(stem, "_W.bin"))
      write_bin(coef(fit), paste0(stem, "_H.bin"))
      if (method == "offset") write_bin(offset(fit), paste0(stem, "_offset.bin"))
      timing <- c(timing, paste(stem, seconds))
    }
  }
}
writeLines(timing, path("seconds.txt"))
