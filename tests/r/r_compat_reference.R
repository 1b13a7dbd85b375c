# Reference fits from R package NMF for tests/test_r_compat.py.
#
# Usage: Rscript r_compat_reference.R DIR
# Reads from DIR (written by the test, float64 little-endian, column-major):
#   sparse_dims.txt ("m n k"), sparse_X.bin, sparse_W0.bin, sparse_H0.bin
# Writes to DIR:
#   golub_dims.txt ("m n k"), golub_X.bin, golub_W0.bin, golub_H0.bin
#     (esGolub and a start drawn by R's own random seed, rnmf: U(0, max X))
#   {golub,sparse}_{lee,brunet}_{N}_{W,H}.bin for N in 1, 10, 100
#   versions.txt (R and NMF versions), seconds.txt (elapsed seconds per fit)
# Each fit runs exactly N iterations: an integer `.stop` is R's fixed-iteration
# stopping rule (nmf.stop.iteration), which also sets maxIter to N.
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
cases <- list(golub = list(X = golub, W0 = basis(golub_start), H0 = coef(golub_start)))
writeLines(paste(nrow(golub), ncol(golub), 3L), path("golub_dims.txt"))
write_bin(golub, "golub_X.bin")
write_bin(cases$golub$W0, "golub_W0.bin")
write_bin(cases$golub$H0, "golub_H0.bin")

dims <- scan(path("sparse_dims.txt"), what = integer(), quiet = TRUE)
cases$sparse <- list(X = read_bin("sparse_X.bin", dims[1], dims[2]),
                     W0 = read_bin("sparse_W0.bin", dims[1], dims[3]),
                     H0 = read_bin("sparse_H0.bin", dims[3], dims[2]))

writeLines(c(R.version.string, paste("NMF", as.character(packageVersion("NMF")))), path("versions.txt"))
timing <- character()
for (data_name in names(cases)) {
  case <- cases[[data_name]]
  for (method in c("lee", "brunet")) {
    for (n_iter in c(1L, 10L, 100L)) {
      seconds <- system.time(
        fit <- nmf(case$X, ncol(case$W0), method, seed = nmfModel(W = case$W0, H = case$H0), .stop = n_iter)
      )[["elapsed"]]
      if (niter(fit) != n_iter) stop("R ran ", niter(fit), " iterations instead of ", n_iter)
      stem <- paste(data_name, method, n_iter, sep = "_")
      write_bin(basis(fit), paste0(stem, "_W.bin"))
      write_bin(coef(fit), paste0(stem, "_H.bin"))
      timing <- c(timing, paste(stem, seconds))
    }
  }
}
writeLines(timing, path("seconds.txt"))
