// Looking inside a GPT-2: the exact tensors (BasicGPT2::inspect, model/inspect.hpp) and the
// explanations built on them, each in its own header under explain/:
//
//   auto insp = model.inspect(ids, tinyllm::InspectOptions{true, true});  // attentions, hidden states
//   auto lens = tinyllm::logit_lens(model, insp);                        // top tokens per layer and position
//   auto roll = tinyllm::attention_rollout(insp);                        // attention through the layers
//   auto dla  = tinyllm::direct_logit_attribution(model, ids, target);   // per layer, head and MLP
//   auto occ  = tinyllm::occlusion(model, ids, target);                  // per prompt token
//
// docs/explain.md describes each method and its source. Depends on gpt2.hpp.
#pragma once

#include "gpt2.hpp"
#include "explain/attribution.hpp"
#include "explain/common.hpp"
#include "explain/logit_lens.hpp"
#include "explain/occlusion.hpp"
#include "explain/rollout.hpp"
