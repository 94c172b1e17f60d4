/**
 * Registers the built-in losses (imported once by `mod.ts`).
 *
 * @module
 */

import { binaryCrossEntropy, binaryCrossEntropyOptions } from "./binary_cross_entropy.ts";
import { blockrankAux, blockrankAuxOptions } from "./blockrank_aux.ts";
import { combined, combinedOptions } from "./combined.ts";
import { cosine, cosineOptions } from "./cosine.ts";
import {
  distillPhase1,
  distillPhase1Options,
  distillPhase2,
  distillPhase2Options,
} from "./distill.ts";
import { infonce, infonceOptions } from "./infonce.ts";
import { kl, klOptions } from "./kl.ts";
import { lambdarank, lambdarankOptions } from "./lambdarank.ts";
import { listnet, listnetOptions } from "./listnet.ts";
import { lm, lmOptions } from "./lm.ts";
import { marginMse, marginMseOptions } from "./margin_mse.ts";
import { matryoshka, matryoshkaOptions } from "./matryoshka.ts";
import { mse, mseOptions } from "./mse.ts";
import { ranknet, ranknetOptions } from "./ranknet.ts";
import { registerLoss, resolveLossName } from "./registry.ts";

if (resolveLossName("infonce") === undefined) {
  registerLoss("infonce", infonce, {
    aliases: ["contrastive", "info_nce"],
    options: infonceOptions,
    description: "InfoNCE with in-batch and hard negatives, several positives",
  });
  registerLoss("kl", kl, {
    aliases: ["kl_div"],
    options: klOptions,
    description: "KL(softmax(labels) ‖ softmax(scores/τ)), Trove-style in-batch",
  });
  registerLoss("listnet", listnet, {
    options: listnetOptions,
    description: "−Σ softmax(labels)·log softmax(scores) per list",
  });
  registerLoss("ranknet", ranknet, {
    options: ranknetOptions,
    description: "pairwise logistic loss on s_i − s_j for t_i > t_j",
  });
  registerLoss("lambdarank", lambdarank, {
    aliases: ["lambda_loss", "ndcg_loss2"],
    options: lambdarankOptions,
    description: "NDCGLoss2 (LambdaLoss framework), as allRank",
  });
  registerLoss("lm", lm, {
    aliases: ["cross_entropy"],
    options: lmOptions,
    description: "token cross-entropy, −100 ignored",
  });
  registerLoss("blockrank_aux", blockrankAux, {
    options: blockrankAuxOptions,
    description: "BlockRank attention InfoNCE over documents",
  });
  registerLoss("mse", mse, { options: mseOptions, description: "mean squared error" });
  registerLoss("cosine", cosine, {
    options: cosineOptions,
    description: "mean (1 − cos) between student and teacher rows",
  });
  registerLoss("margin_mse", marginMse, {
    options: marginMseOptions,
    description: "MSE between student and teacher score margins (positive − negative)",
  });
  registerLoss("binary_cross_entropy", binaryCrossEntropy, {
    aliases: ["bce"],
    options: binaryCrossEntropyOptions,
    description: "pointwise BCE with logits",
  });
  registerLoss("distill_phase1", distillPhase1, {
    options: distillPhase1Options,
    description: "w·MSE + w′·(1 − cos)",
  });
  registerLoss("distill_phase2", distillPhase2, {
    options: distillPhase2Options,
    description: "w·InfoNCE + w′·MSE",
  });
  registerLoss("matryoshka", matryoshka, {
    options: matryoshkaOptions,
    description: "inner loss at several embedding prefix sizes",
  });
  registerLoss("combined", combined, {
    options: combinedOptions,
    description: "weighted sum of losses, parts reported",
  });
}
