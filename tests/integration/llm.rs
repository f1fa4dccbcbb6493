//! Integration tests of the llm domain.
