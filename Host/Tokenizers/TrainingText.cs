namespace PeftHost.Tokenizers;

/// <summary>A small built-in English text from which the local tokenizer writers learn merges and words.</summary>
internal static class TrainingText
{
    public const string English = """
        The quick brown fox jumps over the lazy dog. A tokenizer splits text into pieces that a model can read.
        Parameter-efficient fine-tuning trains a small number of new weights while the base model stays frozen.
        Low-rank adapters add two thin matrices to each attention projection; their product is the update.
        The model reads the tokens, predicts the next one, and learns from the difference between what it
        predicted and what the text says. It is the same for every language model: there is a vocabulary,
        there are embeddings, there are layers of attention and there is an output head.
        In the morning the town was quiet. People walked to work, children went to school, and the shops
        opened their doors. At noon the market was full of voices; in the evening the streets were calm again.
        She said that she would come back tomorrow, and he thought that it would be a good day for a walk.
        They have been working on this project for a long time, and they are happy with what they have made.
        Numbers such as 1, 2, 3, 10, 42, 100 and 2024 appear in text too, as do questions: what, where, when, why?
        """;
}
