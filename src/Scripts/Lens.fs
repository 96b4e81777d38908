/// The F# face of Lens: curried functions over the C# core, tuples and options instead of
/// out-parameters and nulls, so that exploration in `dotnet fsi` reads like TransformerLens.
///
///     open Lens.FSharp
///     let model = Model.load "demo-attn-only-2l"
///     let logits, cache = model |> Model.runWithCache tokens
///     let pattern = cache |> Cache.get "pattern" 1
namespace Lens.FSharp

open TorchSharp
open Lens

type Tensor = torch.Tensor

/// Forward hooks as F# values.
module Hook =
    /// A hook on one hook point (full or shorthand name) that may return a replacement activation.
    let on (name: string) (f: Tensor -> HookPoint -> Tensor option) =
        HookSpec.Named(name, HookFunction(fun t hp -> match f t hp with Some r -> r | None -> null))

    /// A hook on every hook point whose full name passes the filter.
    let where (filter: string -> bool) (f: Tensor -> HookPoint -> Tensor option) =
        HookSpec.Where(System.Func<string, bool> filter,
                       HookFunction(fun t hp -> match f t hp with Some r -> r | None -> null))

    /// A hook that only looks (never replaces).
    let observe (name: string) (f: Tensor -> HookPoint -> unit) = on name (fun t hp -> f t hp; None)

    /// A hook that always replaces the activation.
    let replace (name: string) (f: Tensor -> Tensor) = on name (fun t _ -> Some (f t))

    /// A backward hook: sees the gradient flowing into the activation and may return a replacement.
    let backward (name: string) (f: Tensor -> HookPoint -> Tensor option) =
        HookSpec.Backward(name, HookFunction(fun g hp -> match f g hp with Some r -> r | None -> null))

    /// A backward hook on every hook point whose full name passes the filter.
    let backwardWhere (filter: string -> bool) (f: Tensor -> HookPoint -> Tensor option) =
        HookSpec.BackwardWhere(System.Func<string, bool> filter,
                               HookFunction(fun g hp -> match f g hp with Some r -> r | None -> null))

/// The activation cache, by full or shorthand name.
module Cache =
    let get (name: string) (layer: int) (cache: ActivationCache) = cache.[name, layer]
    let getNamed (name: string) (cache: ActivationCache) = cache.[name]
    let tryGet (name: string) (cache: ActivationCache) =
        match cache.TryGetValue name with | true, t -> Some t | _ -> None
    let names (cache: ActivationCache) = cache.Keys |> List.ofSeq
    let removeBatchDim (cache: ActivationCache) = cache.RemoveBatchDim()

/// Loading and running models.
module Model =
    /// Loads a model by name, hub id, checkpoint folder or llama2.c .bin (the resolution every Lens entry point uses).
    let load (name: string) = Startup.ensure (); ModelLoader.Load name

    let loadWith (options: LoadOptions) (name: string) = Startup.ensure (); ModelLoader.Load(name, options)

    let config (model: HookedTransformer) = model.Config

    /// Logits [batch, pos, d_vocab].
    let forward (tokens: Tensor) (model: HookedTransformer) = model.Forward tokens

    /// Mean next-token loss.
    let loss (tokens: Tensor) (model: HookedTransformer) = model.Loss tokens

    /// Next-token loss per position [batch, pos - 1].
    let lossPerToken (tokens: Tensor) (model: HookedTransformer) = model.Loss(tokens, true)

    /// Logits of a padded batch with its attention mask (from `toTokensBatch`): each row as if alone.
    let forwardMasked (tokens: Tensor, mask: Tensor) (model: HookedTransformer) =
        (model.Forward(tokens, ReturnType.Logits, attentionMask = mask)).Logits

    /// Mean next-token loss of a padded batch, over pairs of real tokens only.
    let lossMasked (tokens: Tensor, mask: Tensor) (model: HookedTransformer) = model.Loss(tokens, attentionMask = mask)

    /// Several texts as (tokens, attention mask), padded on "right" or "left" (left to generate).
    let toTokensBatch (paddingSide: string) (texts: string list) (model: HookedTransformer) =
        let batch = model.ToTokens(Array.ofList texts, paddingSide = paddingSide)
        batch.Tokens, batch.AttentionMask

    /// TransformerLens's stop_at_layer: the residual stream entering block k (negative k counts from the end).
    let runToLayer (layer: int) (tokens: Tensor) (model: HookedTransformer) =
        (model.Forward(tokens, ReturnType.Logits, stopAtLayer = layer)).Residual

    /// TransformerLens's start_at_layer: logits of a residual stream entering block k.
    let runFromLayer (layer: int) (residual: Tensor) (model: HookedTransformer) =
        (model.Forward(residual, ReturnType.Logits, startAtLayer = layer)).Logits

    /// Logits and every activation; dispose the cache when done.
    let runWithCache (tokens: Tensor) (model: HookedTransformer) =
        let run = model.RunWithCache tokens
        run.Logits, run.Cache

    /// Logits and the activations whose names match the globs or shorthand names.
    let runWithCacheOf (names: string list) (tokens: Tensor) (model: HookedTransformer) =
        let run = model.RunWithCache(tokens, HookedTransformer.NamesFilter(Array.ofList names))
        run.Logits, run.Cache

    /// The mean next-token loss, and every activation with its gradient (`NAME_grad`) after the loss's backward
    /// (TransformerLens's run_with_cache(incl_bwd=True)); dispose the run when done.
    let runWithGradCache (tokens: Tensor) (model: HookedTransformer) =
        model.RunWithCache(tokens, ReturnType.Loss, true)

    /// Every activation with its gradient for a scalar metric of the logits; the run also holds the metric's value.
    let backward (metric: Tensor -> Tensor) (tokens: Tensor) (model: HookedTransformer) =
        model.Backward(tokens, System.Func<Tensor, Tensor> metric)

    /// Logits with temporary hooks, removed afterwards even on error.
    let runWithHooks (hooks: HookSpec list) (tokens: Tensor) (model: HookedTransformer) =
        use _ = model.Hooks hooks
        model.Forward tokens

    /// Attaches hooks for a `use` scope.
    let hooks (hooks: HookSpec list) (model: HookedTransformer) = model.Hooks hooks

    let hookNames (model: HookedTransformer) = model.HookNames |> List.ofSeq
